"""A Jinja sandbox that also bounds what a template can build.

Jinja's ``SandboxedEnvironment`` stops a template from reaching Python internals, but not from
asking for memory: ``{{ 'x' * 10**8 }}`` builds 100 MB, ``10 ** 10 ** 8`` runs for ages. A
template that does so (by mistake, or written by someone who should not have that power) must
fail its own message with a clear error, not take the worker down. So:

- operators (``*``, ``+``, ``**``, ``%``), filters and method calls that grow strings or lists
  are checked before they run, where the size of the result is known in advance, and every
  result is checked after;
- ``range()`` counts against one budget per render (nested loops multiply);
- the rendered output is streamed and stopped past ``MAX_OUTPUT`` characters.

``{% set %}...{% endset %}`` blocks and long loops over already-bounded values are not
metered beyond these checks; they cost time, not unbounded memory.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from jinja2 import Template
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_VALUE = 1_000_000  # characters (or items) in one value a template builds
MAX_OUTPUT = 1_000_000  # characters of one rendered template; Gmail clips mail at ~100 KB
MAX_RANGE_TOTAL = 100_000  # items of all range() calls in one render
MAX_INT_BITS = 4096  # ``**`` results: far beyond any price or count

# Filters whose result can be much larger than their input, checked before they run.
_WIDTH_ARGUMENT = {"center": 0, "indent": 0}  # position of the width after the value
# Widths and precisions in printf-style ('%08.2f') and str.format ('{:>10}') specs.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d+|\*)?(?:\.(\d+|\*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")

_M = TypeVar("_M", bound=Mapping[str, Any])

_range_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("range_budget")


class TemplateTooLarge(SecurityError):
    """A template tried to build more than the sandbox allows."""


def _size(value: Any) -> int | None:
    if isinstance(value, (str, bytes, list, tuple)):
        return len(value)
    return None


def _check_result(value: Any, what: str) -> Any:
    size = _size(value)
    if size is not None and size > MAX_VALUE:
        raise TemplateTooLarge(f"{what} built {size} characters/items, over {MAX_VALUE}")
    return value


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_VALUE:
        raise TemplateTooLarge(f"{what} asks for a width of {width}, over {MAX_VALUE}")


def _check_format_spec(spec: Any, what: str) -> None:
    # '%100000000s' or '{:>100000000}' pad to that width; '*' takes it from the arguments.
    if not isinstance(spec, str):
        return
    numbers = [n for m in _PERCENT_SPEC.finditer(spec) for n in m.groups() if n]
    numbers += [n for m in _BRACE_SPEC.finditer(spec) for n in _DIGITS.findall(m.group(1))]
    for number in numbers:
        if number == "*" or len(number) > 7 or int(number) > MAX_VALUE:
            raise TemplateTooLarge(f"{what} asks for a width of {number}, over {MAX_VALUE}")


def _check_replace(text: Any, new: Any, what: str) -> None:
    if isinstance(text, str) and isinstance(new, str):
        # At worst every gap between characters is replaced.
        if (len(text) + 1) * len(new) > MAX_VALUE and len(new) > 1:
            raise TemplateTooLarge(f"{what} could build over {MAX_VALUE} characters")


def _check_join(items: Any, what: str) -> None:
    if isinstance(items, (list, tuple)):
        total = sum(_size(i) or 0 for i in items)
        if total > MAX_VALUE:
            raise TemplateTooLarge(f"{what} would build {total} characters, over {MAX_VALUE}")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    what = f"operator {operator!r}"
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * times > MAX_VALUE:
                raise TemplateTooLarge(f"{what} would build {size * times} items, over {MAX_VALUE}")
    elif operator == "+":
        sizes = (_size(left), _size(right))
        if None not in sizes and sum(s or 0 for s in sizes) > MAX_VALUE:
            raise TemplateTooLarge(f"{what} would build over {MAX_VALUE} characters/items")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise TemplateTooLarge(f"{what}: {left} ** {right} is too large a number")
    elif operator == "%":
        _check_format_spec(left, what)


def _bounded_range(*args: int) -> range:
    """``range`` with one budget for the whole render (see the module doc)."""
    numbers = range(*args)
    budget = _range_budget.get(None)
    if budget is not None:
        budget[0] += len(numbers)
        if budget[0] > MAX_RANGE_TOTAL:
            raise TemplateTooLarge(f"range() over {MAX_RANGE_TOTAL} items in one render")
    elif len(numbers) > MAX_RANGE_TOTAL:
        raise TemplateTooLarge(f"range() of {len(numbers)} items, over {MAX_RANGE_TOTAL}")
    return numbers


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        what = f"filter {name!r}"
        # pass_context / pass_eval_context / pass_environment filters get that first.
        values = [
            a for a in args if not isinstance(a, (Context, EvalContext, SandboxedEnvironment))
        ]
        if name in _WIDTH_ARGUMENT and len(values) > 1:
            _check_width(values[1], what)
        if name in _WIDTH_ARGUMENT and "width" in kwargs:
            _check_width(kwargs["width"], what)
        if name == "format" and values:
            _check_format_spec(values[0], what)
        if name == "replace" and len(values) > 2:
            _check_replace(values[0], values[2], what)
        if name == "join" and values:
            _check_join(values[0], what)
        return _check_result(func(*args, **kwargs), what)

    return bounded


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
# The mappings a context is made of, with what each has as attributes: its class's (a plain
# dict has no __dict__ of its own, nor has a ``keyed_view``, having __slots__).
_MAPPING_ATTRIBUTES: dict[type, frozenset[str]] = {dict: frozenset(dir(dict))}


def keyed_view(cls: type[_M]) -> type[_M]:
    """Class decorator: templates look up the keys of ``cls``, a read-only Mapping of the
    context with ``__slots__`` all along its classes (so no instance has an attribute that its
    class lacks), as they do a dict's (see ``BoundedSandbox.getattr``)."""
    _MAPPING_ATTRIBUTES[cls] = frozenset(dir(cls))
    return cls


class BoundedSandbox(SandboxedEnvironment):
    """A ``SandboxedEnvironment`` whose templates cannot build huge values (module doc)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range

    def bound_filters(self) -> None:
        """Wrap every filter registered so far; call after adding the environment's own."""
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``order.name`` looks for an attribute first, then for the key; on the dicts a
        # context is made of, the failed attribute lookup (an AttributeError raised and
        # caught) was most of what a lookup cost, and a template makes about eighty per
        # email. A name that is no attribute of dict can only be a key: it goes straight to
        # the key, with the same result (a name such as "items" still finds the method).
        # The same holds for the context's read-only mappings (``keyed_view``).
        attributes = _MAPPING_ATTRIBUTES.get(type(obj))
        if attributes is not None and attribute not in attributes:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        return _check_result(result, f"operator {operator!r}")

    def call(
        __self,  # noqa: N805 - Jinja's own signature: template kwargs may be called "self"
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # The sandbox hands out str.format as a wrapper around the bound method.
        method = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        what = f"method {name!r}"
        if isinstance(owner, str):
            if name in _WIDTH_METHODS and args:
                _check_width(args[0], what)
            elif name in {"format", "format_map"}:
                _check_format_spec(owner, what)
            elif name == "replace" and len(args) > 1:
                _check_replace(owner, args[1], what)
            elif name == "join" and args:
                _check_join(args[0], what)
            elif name == "expandtabs":
                width = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(width, int) and width * owner.count("\t") > MAX_VALUE:
                    raise TemplateTooLarge(f"{what} would build over {MAX_VALUE} characters")
        return _check_result(super().call(__context, __obj, *args, **kwargs), what)


def render_bounded(
    template: Template, context: Mapping[str, Any], *, name: str | None = None
) -> str:
    """Render ``template``, streaming, stopped past MAX_OUTPUT characters.

    Raises TemplateTooLarge naming the template (``name`` for one given as text, which has
    none of its own) when it builds or writes too much.
    """
    token = _range_budget.set([0])
    try:
        pieces: list[str] = []
        written = 0
        for piece in template.generate(context):
            written += len(piece)
            if written > MAX_OUTPUT:
                raise TemplateTooLarge(f"output over {MAX_OUTPUT} characters")
            pieces.append(piece)
        return "".join(pieces)
    except TemplateTooLarge as exc:
        raise TemplateTooLarge(f"template {name or template.name}: {exc}") from None
    finally:
        _range_budget.reset(token)
