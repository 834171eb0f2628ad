"""Canonical events checked and written by msgspec, without pydantic: intake's fast path.

Validating an order's canonical event with pydantic (``CanonicalEvent.model_validate``) and
writing its stored JSON from the models (``payload_json``) cost about a fifth of the
instructions of a Shopify order webhook. ``checked_event`` does both for an event a normaliser
built: msgspec converts it into structs derived from the models' fields (their types, lengths,
pattern and ranges, times with an offset, unknown fields refused) and writes them as
``payload_json`` writes the models, field by field in the models' order, absent and None
fields left out. What msgspec cannot check is checked after it: text that pydantic would
strip (``stripped``, on the written JSON), an amount its limits refuse (each checked by
the model's own check), an address the email check would refuse or change.

Only what pydantic would take unchanged is taken: for anything else ``checked_event`` gives
None, and the caller validates with pydantic, whose answer, messages and stored values stand.
Taken, the event is the one pydantic would make, value for value (``tests/test_event_structs.py``
holds the two to the same stored bytes). The structs are made from the models at import, so a
field added to a model is checked here too, and a rule this module does not know (a new
validator, a constraint it cannot express) stops the import rather than being skipped.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union, cast

import annotated_types
import msgspec
from email_validator import EmailNotValidError
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from postpurchase.events import (
    CanonicalEvent,
    CustomerSnapshot,
    EventType,
    Money,
    NonNegativeMoney,
    _aware,
    event_subject_id,
    event_times,
    normalised_email,
)

# The fields with a validator of their model: CustomerSnapshot._usable_email (_plain_email)
_EMAIL_FIELDS: set[tuple[type[BaseModel], str]] = {(CustomerSnapshot, "email")}
_MONEY_CHECKS = {typing.get_args(Money)[1].func, typing.get_args(NonNegativeMoney)[1].func}
_PLAIN = (str, bool, int, date, datetime, EventType)  # taken as msgspec checked them


class _Field:
    """One field of a model as a struct field: its msgspec type and the check of its value."""

    def __init__(self, annotation: Any, metadata: list[Any]) -> None:
        self.check: Callable[[Any], bool] | None = None
        self.nested = False  # a struct, or a list of them
        self.kind = self._type(annotation, metadata)

    def _type(self, annotation: Any, metadata: list[Any]) -> Any:
        if typing.get_origin(annotation) is Annotated:
            inner, *extra = typing.get_args(annotation)
            return self._type(inner, [*metadata, *extra])
        if typing.get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1 or len(typing.get_args(annotation)) != 2:
                raise TypeError(f"unsupported union {annotation}")
            return self._type(members[0], metadata) | None
        constraints: dict[str, Any] = {}
        for item in metadata:
            self._constrain(annotation, item, constraints)
        if typing.get_origin(annotation) is list:
            element = _Field(typing.get_args(annotation)[0], [])
            if element.check is not None:
                raise TypeError(f"unsupported list {annotation}")
            self.nested = element.nested
            kind: Any = list[element.kind]  # type: ignore[name-defined]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.nested = True
            kind = _struct_of(annotation)
        elif annotation is Decimal and self.check is not None:  # the money check is there
            kind = Decimal
        elif annotation in _PLAIN:
            kind = annotation
        else:
            raise TypeError(f"unsupported type {annotation}")
        return Annotated[kind, msgspec.Meta(**constraints)] if constraints else kind

    def _constrain(self, kind: Any, item: Any, out: dict[str, Any]) -> None:
        if isinstance(item, FieldInfo):
            for inner in item.metadata:
                self._constrain(kind, inner, out)
        elif isinstance(item, annotated_types.MinLen):
            out["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            out["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge):
            out["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            out["le"] = item.le
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            out["pattern"] = vars(item)["pattern"]
        elif isinstance(item, AfterValidator) and item.func is _aware and kind is datetime:
            out["tz"] = True  # _aware's other work, a zone of the standard library, is moot
        elif isinstance(item, AfterValidator) and item.func in _MONEY_CHECKS:
            self.check = _plain_amount(cast(Callable[[Decimal], Decimal], item.func))
        else:
            raise TypeError(f"unsupported constraint {item!r} of {kind}")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``_plain_values`` reads of one struct: (check, getter) pairs, each getter giving a
    tuple of field values (None ones unchecked), and the getter of its nested structs."""

    checks: tuple[tuple[Callable[[Any], bool], Callable[[Any], tuple[Any, ...]]], ...]
    nested: Callable[[Any], tuple[Any, ...]] | None


def _struct_of(model: type[BaseModel]) -> type[msgspec.Struct]:
    """The struct of ``model``'s fields, in its order: required ones without a default, the
    others with None (left out when written, as ``exclude_none`` and ``exclude_unset`` leave
    them out: a field the normaliser set is written even when it equals the model's
    default). A required field of the model that allows None here refuses it: pydantic
    would leave it out of the JSON, which a field without a default cannot be."""
    struct = _STRUCTS.get(model)
    if struct is not None:
        return struct
    config = model.model_config
    if config.get("extra") != "forbid" or not config.get("str_strip_whitespace"):
        raise TypeError(f"{model.__name__}: unsupported model configuration")
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.validators or decorators.root_validators:
        raise TypeError(f"{model.__name__}: unsupported model validator")
    validated = {field for d in decorators.field_validators.values() for field in d.info.fields}
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    checks: dict[Callable[[Any], bool], list[str]] = {}
    nested: list[str] = []
    for name, info in model.model_fields.items():
        field = _Field(info.annotation, list(info.metadata))
        if name in validated:
            if (model, name) not in _EMAIL_FIELDS or info.annotation != str | None:
                raise TypeError(f"{model.__name__}.{name}: unsupported validator")
            field.check = _plain_email
        if field.check is not None:
            checks.setdefault(field.check, []).append(name)
        if field.nested:
            nested.append(name)
        if info.is_required():
            kind = field.kind
            if typing.get_origin(kind) in (Union, types.UnionType):
                (kind,) = (a for a in typing.get_args(kind) if a is not type(None))
            fields.append((name, kind))
        else:
            fields.append((name, field.kind, None))
    struct = msgspec.defstruct(
        f"{model.__name__}Struct",
        fields,
        kw_only=True,
        omit_defaults=True,
        forbid_unknown_fields=True,
    )
    _STRUCTS[model] = struct
    _PLANS[struct] = _Plan(
        tuple((check, _values(names)) for check, names in checks.items()),
        _values(nested) if nested else None,
    )
    return struct


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of the fields ``names`` of a struct as a tuple, got in C."""
    if len(names) == 1:
        name = names[0]
        return lambda struct: (getattr(struct, name),)
    return operator.attrgetter(*names)


def _plain_values(event: Any) -> bool:
    """Whether every amount and address of ``event`` (structs) is one pydantic takes as it
    is."""
    pending = [event]
    for struct in pending:  # the nested structs are appended as they are met
        plan = _PLANS[type(struct)]
        for check, values in plan.checks:
            for value in values(struct):
                if value is not None and not check(value):
                    return False
        if plan.nested is not None:
            for value in plan.nested(struct):
                if type(value) is list:
                    pending.extend(value)
                elif value is not None:
                    pending.append(value)
    return True


def _plain_amount(validator: Callable[[Decimal], Decimal]) -> Callable[[Any], bool]:
    """The check of an amount by ``validator``, the model's own (``_money_check``), of a
    Decimal pydantic's own check would pass: a finite one."""

    def check(value: Decimal) -> bool:
        if not value.is_finite():
            return False
        try:
            return validator(value) is value
        except ValueError:  # PydanticKnownError too
            return False

    return check


def _plain_email(value: str) -> bool:
    """Whether ``CustomerSnapshot._usable_email`` keeps ``value`` (stripped) as it is: an
    empty address becomes None, any other is checked and stored lower-cased."""
    if not value or value.lower() != value:
        return False
    try:
        normalised_email(value)
    except EmailNotValidError:
        return False
    return True


_STRUCTS: dict[type[BaseModel], type[msgspec.Struct]] = {}
_PLANS: dict[type[msgspec.Struct], _Plan] = {}
_EVENT = _struct_of(CanonicalEvent)
_ENCODER = msgspec.json.Encoder()


# The first bytes, in UTF-8, of the characters beyond ASCII that str.strip() removes (which
# removes every character pydantic's strip does, Unicode White_Space, and \x1c-\x1f besides):
# U+0085 and U+00A0, U+1680, U+2000 to U+205F, U+3000. Written out: worked out from every
# character at import, they cost a third of a second (tests/test_event_structs.py does).
_WIDE_SPACE_LEADS = (0xC2, 0xE1, 0xE2, 0xE3)
_BACKSLASH = ord("\\")


def stripped(json: bytes) -> bool:
    """Whether every text in ``json``, as msgspec and pydantic write an event (compact,
    characters beyond ASCII as they are), is as pydantic's strip leaves it; False also when
    that is not sure.

    Told from the bytes, a few searches in C, where a check of each text cost a call each:
    outside its texts such JSON holds no space, so a space beside a quote begins or ends
    one; the other ASCII spaces are written as escapes (``\\t``, ``\\u000b``), and a
    backslash is taken as a doubt. So is the first byte of a space beyond ASCII anywhere
    (also that of other characters: "’", "€", the letters of some scripts). JSON written
    otherwise (with spaces between its tokens, or escapes for all beyond ASCII) is never
    taken for stripped when it is not: at worst it is not sure.
    """
    if _BACKSLASH in json or b'" ' in json or b' "' in json:
        return False
    return not any(map(json.__contains__, _WIDE_SPACE_LEADS))


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A canonical event ``checked_event`` took: what intake reads of one, as the model's
    methods of the same names give it."""

    type: EventType
    occurred_at: datetime
    _subject_id: str | None
    _times: list[tuple[str, datetime]]
    _json: bytes

    def subject_id(self) -> str | None:
        return self._subject_id

    def times(self) -> list[tuple[str, datetime]]:
        return self._times

    def payload_json(self) -> bytes:
        """The bytes ``CanonicalEvent.payload_json`` writes of the event pydantic makes."""
        return self._json

    def as_payload(self) -> dict[str, Any]:
        """``CanonicalEvent.as_payload``: its JSON, read back."""
        return cast(dict[str, Any], msgspec.json.decode(self._json))


def checked_event(data: dict[str, Any]) -> CheckedEvent | None:
    """``data``, an event as a normaliser builds it for ``CanonicalEvent.model_validate``
    (values of the models' Python types: Decimal amounts, aware datetimes), checked without
    pydantic; None when pydantic must decide.

    Its text must hold no lone surrogate (pydantic refuses one, this check does not look):
    so is all text decoded by msgspec, which refuses a document holding one.
    """
    try:
        event: Any = msgspec.convert(data, _EVENT)
    except msgspec.ValidationError:
        return None
    json = _ENCODER.encode(event)
    if not (stripped(json) and _plain_values(event)):
        return None
    return CheckedEvent(
        event.type, event.occurred_at, event_subject_id(event), event_times(event), json
    )
