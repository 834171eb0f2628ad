"""Email CSS inlined once per template file, when templates load, not once per message.

Mail clients ignore ``<style>``, so sent HTML carries its styles on each element. Which rules
apply to an element depends on the template's elements, never on a message's values
(autoescape keeps values from adding elements). So each ``email/*.html.j2`` source is inlined
once, with the stylesheet of the template set (the ``<style>`` blocks of its HTML templates,
removed from where they were), and rendering is plain Jinja.

The inliner parses HTML, not Jinja: each Jinja construct is swapped for a placeholder first (a
comment between elements, a bare token inside a quoted attribute value) and put back after.
A ``{{ expression }}`` in a declaration's value (``color: {{ shop.colours.primary }}``, in a
``<style>`` block or a ``style`` attribute) stands in as a CSS identifier, so it goes wherever
its declaration goes: on every element its rule matches, or nowhere. Such an expression must
render one CSS value that HTML escaping leaves as it is (the shop's colours are validated hex
codes): a ``;`` or quote in it would read differently once inlined. Jinja anywhere else in
CSS (a selector, a property name, a ``class`` or ``id``) could change which rules apply.

A source this cannot keep intact (such Jinja, a construct inside a tag but outside quotes, an
element the HTML parser would add, move or close differently, such as a ``<tbody>`` it implies)
raises ``NotInlinable``; the renderer then inlines each message instead, as before. Selectors
that join elements of two files (``.content p`` with the ``p`` in a child template) are not
seen here: the renderer compares its first message of each template with per-message inlining.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from html import unescape
from html.parser import HTMLParser

import css_inline

_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)")
# An attribute opened with a double quote and not closed yet (its text so far), at the end of
# a tag's text.
_OPEN_ATTRIBUTE = re.compile(r"""\s([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*"([^"]*)$""")
# Structural and state selectors (:first-child, :hover, a + b, a ~ b): a loop's copies of
# one element would all match or miss what only some copies match in the sent message.
_SIBLING_OR_STATE = re.compile(r"[:+~]")
_MARK = "__postpurchase_jinja_{}__"
_VALUE_MARK = "__postpurchase_value_{}__"
_TABLE_PARTS = frozenset({"table", "thead", "tbody", "tfoot", "tr"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})
_MARK_FOUND = re.compile(
    r"(?:<!--|&lt;!--)?__postpurchase_jinja_(\d+)__(?:-->|--&gt;)?|__postpurchase_value_(\d+)__"
)
# What decides where a CSS value begins and ends, once comments are gone.
_CSS_PUNCTUATION = re.compile(r"[{};:]|__postpurchase_value_\d+__")


class NotInlinable(ValueError):
    """A template source whose CSS cannot be inlined ahead of rendering (the reason why)."""


def stylesheet(sources: Mapping[str, str]) -> str:
    """The CSS of the ``<style>`` blocks in ``sources`` (name to template source), in order."""
    return "\n".join(block for name in sorted(sources) for block in _STYLE.findall(sources[name]))


def inline_source(source: str, css: str) -> str:
    """``source`` (a Jinja HTML template) with ``css`` applied to its elements' ``style``.

    A whole document (with ``<html``) is inlined as a document, its ``<style>`` removed;
    anything else (a child template's blocks, an included part) as a fragment. Raises
    NotInlinable when the result might not render what inlining each message renders.
    """
    values: dict[str, int] = {}  # expressions in CSS values, with their placeholder's number
    css = _mark_css(css, values)
    if _SIBLING_OR_STATE.search(_selectors(css)):
        raise NotInlinable("the stylesheet has selectors that depend on siblings or state")
    constructs: list[str] = []  # the others, by their placeholder's number
    marked = _mark_source(source, constructs, values)
    inliner = css_inline.CSSInliner(keep_style_tags=False)
    if "<html" in marked.lower():
        inlined = inliner.inline(marked)
    else:
        inlined = inliner.inline_fragment(marked, css)
    if _tags(inlined) != _tags(_STYLE.sub("", marked)):
        raise NotInlinable("the HTML parser adds, drops or closes elements the source does not")
    restored: Counter[int] = Counter()
    expressions = list(values)

    def unmark(match: re.Match[str]) -> str:
        if match.group(2) is not None:  # a value: on as many elements as its rule matches
            return expressions[int(match.group(2))]
        index = int(match.group(1))
        restored[index] += 1
        return constructs[index]

    result = _MARK_FOUND.sub(unmark, inlined)
    if sorted(restored.elements()) != list(range(len(constructs))):
        raise NotInlinable("a Jinja construct did not come through the HTML parser intact")
    return result


def _mark_source(source: str, constructs: list[str], values: dict[str, int]) -> str:
    """``source`` with each Jinja construct swapped for its placeholder (see ``_placeholder``),
    those of its ``<style>`` blocks too (see ``_mark_css``)."""
    source = _STYLE.sub(
        lambda m: (
            source[m.start() : m.start(1)]
            + _mark_css(m.group(1), values)
            + source[m.end(1) : m.end()]
        ),
        source,
    )
    marked = ""
    end = 0
    for match in _CONSTRUCT.finditer(source):
        marked += source[end : match.start()]
        end = match.end()
        marked += _placeholder(marked, match.group(0), constructs, values)
    return marked + source[end:]


def _placeholder(before: str, construct: str, constructs: list[str], values: dict[str, int]) -> str:
    """What stands for a construct while the HTML is parsed, given the source before it."""
    if before.rfind("<") <= before.rfind(">"):
        constructs.append(construct)  # between elements or in text: a comment stays put
        return f"<!--{_MARK.format(len(constructs) - 1)}-->"
    tag = before[before.rfind("<") :]
    attribute = _OPEN_ATTRIBUTE.search(tag)
    if attribute is None:
        raise NotInlinable(f"Jinja inside a tag, outside a quoted attribute: {construct}")
    name = attribute.group(1).lower()
    if name == "style" and construct.startswith("{{"):
        # Declarations, as if inside a rule's braces: a value is fine, a property name not.
        token = _value_token(construct, values)
        _check_values(unescape(attribute.group(2)) + token, declarations=True)
        return token
    if name in ("class", "id", "style"):
        # Which rules apply, or what the element's own style is, would depend on the message.
        raise NotInlinable(f"Jinja in a {attribute.group(1)} attribute: {construct}")
    constructs.append(construct)
    return _MARK.format(len(constructs) - 1)


def _mark_css(css: str, values: dict[str, int]) -> str:
    """``css`` with each Jinja expression swapped for an identifier; raises NotInlinable
    unless every Jinja construct in it is an expression in a declaration's value."""

    def mark(match: re.Match[str]) -> str:
        if not match.group(0).startswith("{{"):
            raise NotInlinable(f"Jinja statement or comment in a stylesheet: {match.group(0)}")
        return _value_token(match.group(0), values)

    marked = _CONSTRUCT.sub(mark, css)
    _check_values(marked)
    return marked


def _value_token(expression: str, values: dict[str, int]) -> str:
    """The identifier that stands for ``expression`` (the same one each time it appears)."""
    return _VALUE_MARK.format(values.setdefault(expression, len(values)))


def _check_values(css: str, *, declarations: bool = False) -> None:
    """Raise NotInlinable unless each value placeholder in ``css`` is in a declaration's value:
    after the ``:`` of a declaration in a style rule (not an at-rule such as ``@media``),
    before its ``;`` or ``}``. ``declarations``: ``css`` is a ``style`` attribute's text."""
    css = re.sub(r"/\*.*?\*/", " ", css, flags=re.S)
    rules = [True] if declarations else []  # for each open block: whether it holds declarations
    in_value = False
    start = 0  # where the current selector or declaration began
    for part in _CSS_PUNCTUATION.finditer(css):
        found = part.group(0)
        if found == ":":
            in_value = in_value or bool(rules and rules[-1])
            continue
        if found.startswith("__"):
            if not in_value:
                raise NotInlinable(
                    "Jinja in CSS outside a declaration's value (a selector, a "
                    "property name or an at-rule)"
                )
            continue
        if found == "{":
            if in_value:
                raise NotInlinable("a block inside a CSS declaration that holds Jinja")
            rules.append(not css[start : part.start()].strip().startswith("@"))
        elif found == "}" and rules:
            rules.pop()
        in_value = False
        start = part.end()


def _selectors(css: str) -> str:
    """The selector parts of ``css`` (declarations and comments left out)."""
    return re.sub(r"\{[^}]*\}", " ", re.sub(r"/\*.*?\*/", "", css, flags=re.S))


def _tags(html: str) -> Counter[str]:
    """Start and end tags by name, in a form the parser's output can be compared with."""
    names = Counter(
        ("</" if m.group(0).startswith("</") else "<") + m.group(1).lower()
        for m in _TAG.finditer(html)
    )
    if "<html" not in html.lower():
        return names
    # A document: the parser's output always has these, the source may leave some implied.
    for name in ("html", "head", "body"):
        names[f"<{name}"] = names[f"</{name}"] = 1
    return names


class _Outline(HTMLParser):
    """A document as a mail client reads it: elements with their attributes in any order,
    text with each run of white space as one space, and none of the white space that a
    table holds between its rows and cells (HTML shows none of it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[object, ...]] = []
        self._text: list[str] = []
        self._open: list[str] = []

    def flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._text))
        self._text = []
        if text == " " and self._open and self._open[-1] in _TABLE_PARTS:
            return
        if text:
            self.items.append(("text", text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.flush()
        self.items.append(("start", tag, tuple(sorted(attrs, key=lambda a: a[0]))))
        if tag not in _VOID:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.flush()
        self.items.append(("end", tag))
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_comment(self, data: str) -> None:
        self.flush()
        self.items.append(("comment", data))


def same_document(first: str, second: str) -> bool:
    """Whether two serialised HTML documents are the same document to a mail client."""
    outlines = []
    for document in (first, second):
        outline = _Outline()
        outline.feed(document)
        outline.close()
        outline.flush()
        outlines.append(outline.items)
    return outlines[0] == outlines[1]
