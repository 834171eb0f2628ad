"""Canonical events' amounts are accepted and refused exactly as their constraints were.

``Money`` and ``NonNegativeMoney`` check an amount of at most four places under 10^11 with a
few cheap calls and leave any other to pydantic's own check. Whatever the way, the value and
every refusal (type, message, context, input, place) must be those of the constraints the
fields had before: ``Field(max_digits=18, decimal_places=4)``, ``ge=0`` for prices and refunds,
then the column's range. Held to it over edge cases of each limit and generated amounts, as
JSON (the drainer's stored payloads) and as Python values (intake's normalisers).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from postpurchase.events import (
    STORED,
    CanonicalEvent,
    Money,
    NonNegativeMoney,
    _fits_money_column,
)

_DIGITS = Field(max_digits=18, decimal_places=4)
# the declarations before the short way, as the reference
BEFORE = {
    "money": TypeAdapter(Annotated[Decimal, _DIGITS, AfterValidator(_fits_money_column)]),
    "non-negative": TypeAdapter(
        Annotated[Decimal, _DIGITS, Field(ge=0), AfterValidator(_fits_money_column)]
    ),
}
NOW = {"money": TypeAdapter(Money), "non-negative": TypeAdapter(NonNegativeMoney)}

EDGES = [
    # within every limit
    "0", "-0", "0.00", "-0.0000", "19.99", "-19.99", "5", "5.5", "5.000", "0.0001", "1.00000",
    "99999999999.9999", "-99999999999.9999", "00000000019.99", "1E+2", "1E-4", "5.0E-4",
    "0E+10", "0E-40", "12.50000000", " 12.50 ", "1_000.25",
    # too many digits in total, decimal places, digits before the point
    "1234567890123456789", "-1234567890123456789", "12345678901234.56789", "1.00001",
    "-1.00001", "0.00001", "-0.00001", "1E-5", "123456789012345", "123456789012345.5",
    "1" * 30, "1." + "0" * 30 + "1", "0." + "0" * 40 + "1", "1E-1000000", "1E-9999999999",
    # non-finite
    "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf",
    # negative where prices and refunds must not be
    "-0.01", "-5", "-1E+3",
    # over the column's range
    "100000000000", "-100000000000", "1E+11", "0E+11", "0E+20", "99999999999.99995",
    "1E+17", "1E+999999999",
    # not amounts
    "", "abc", "1.2.3", "--1",
]  # fmt: skip


def _outcome(adapter: TypeAdapter[Decimal], how: str, value: Any) -> tuple[Any, ...]:
    try:
        if how == "json":
            amount = adapter.validate_json(value)
        else:
            amount = adapter.validate_python(value)
    except ValidationError as exc:
        # by repr: an input may be a float NaN, a context may hold a ValueError
        return "refused", repr(exc.errors())
    return "accepted", amount.as_tuple()  # the digits and exponent, not only the value


def _forms(text: str) -> list[tuple[str, Any]]:
    """``text`` as a JSON string, a JSON number where it is one, and Python str and Decimal."""
    forms: list[tuple[str, Any]] = [("json", json.dumps(text)), ("python", text)]
    try:
        forms.append(("python", Decimal(text)))
    except ArithmeticError:
        pass
    try:
        json.loads(text)
    except ValueError:
        pass
    else:
        forms.append(("json", text))
    return forms


def _same_as_before(text: str) -> None:
    for kind, adapter in NOW.items():
        for how, value in _forms(text):
            assert _outcome(adapter, how, value) == _outcome(BEFORE[kind], how, value), (
                kind,
                how,
                value,
            )


@pytest.mark.parametrize("text", EDGES)
def test_each_edge_of_each_limit_as_before(text):
    _same_as_before(text)


@settings(max_examples=1000)
@given(
    sign=st.sampled_from(["", "-"]),
    whole=st.text("0123456789", min_size=1, max_size=20),
    places=st.none() | st.text("0123456789", max_size=8),
    exponent=st.none() | st.integers(-40, 40),
)
def test_generated_amounts_as_before(sign, whole, places, exponent):
    text = sign + whole
    if places is not None:
        text += "." + places
    if exponent is not None:
        text += f"E{exponent:+d}"
    _same_as_before(text)


@settings(max_examples=500)
@given(st.decimals() | st.integers(-(10**20), 10**20) | st.floats())
def test_generated_python_values_as_before(value):
    for kind, adapter in NOW.items():
        assert _outcome(adapter, "python", value) == _outcome(BEFORE[kind], "python", value)


def _refusal(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(type, place, message, input) of each refusal of ``body``, stored or at intake."""
    seen = []
    for refuse in (
        lambda: CanonicalEvent.model_validate_json(json.dumps(body), context={STORED: True}),
        lambda: CanonicalEvent.model_validate(body),
    ):
        with pytest.raises(ValidationError) as caught:
            refuse()
        seen.append([(e["type"], e["loc"], e["msg"], e["input"]) for e in caught.value.errors()])
    assert seen[0] == seen[1]
    return seen[0]


def _order_event(**order: Any) -> dict[str, Any]:
    return {
        "type": "order.paid",
        "occurred_at": "2026-11-27T10:00:00Z",
        "order": {"external_id": "1001", "currency": "EUR", **order},
    }


def _line(price: str) -> dict[str, Any]:
    return {"external_id": "l1", "title": "Beans", "quantity": 1, "unit_price": price}


@pytest.mark.parametrize(
    ("body", "refusals"),
    [
        (
            _order_event(total="59.90001"),
            [
                (
                    "decimal_max_places",
                    ("order", "total"),
                    "Decimal input should have no more than 4 decimal places",
                    "59.90001",
                )
            ],
        ),
        (
            _order_event(total="1234567890123456789"),
            [
                (
                    "decimal_max_digits",
                    ("order", "total"),
                    "Decimal input should have no more than 18 digits in total",
                    "1234567890123456789",
                )
            ],
        ),
        (
            _order_event(subtotal="123456789012345.5"),
            [
                (
                    "decimal_whole_digits",
                    ("order", "subtotal"),
                    "Decimal input should have no more than 14 digits before the decimal point",
                    "123456789012345.5",
                )
            ],
        ),
        (
            _order_event(total_tax="NaN"),
            [
                (
                    "finite_number",
                    ("order", "total_tax"),
                    "Input should be a finite number",
                    "NaN",
                )
            ],
        ),
        (
            _order_event(total="1E+11"),
            [("value_error", ("order", "total"), "Value error, must be less than 10^11", "1E+11")],
        ),
        (
            # a negative price with too many places: the places are named, as before
            _order_event(lines=[_line("-1.00001"), _line("-0.01")]),
            [
                (
                    "decimal_max_places",
                    ("order", "lines", 0, "unit_price"),
                    "Decimal input should have no more than 4 decimal places",
                    "-1.00001",
                ),
                (
                    "greater_than_equal",
                    ("order", "lines", 1, "unit_price"),
                    "Input should be greater than or equal to 0",
                    "-0.01",
                ),
            ],
        ),
        (
            {
                **_order_event(),
                "type": "order.refunded",
                "refund": {"external_id": "r1", "amount": "-5", "currency": "EUR"},
            },
            [
                (
                    "greater_than_equal",
                    ("refund", "amount"),
                    "Input should be greater than or equal to 0",
                    "-5",
                )
            ],
        ),
    ],
)
def test_refusals_name_the_field_and_the_limit(body, refusals):
    assert _refusal(body) == refusals


def test_amounts_within_the_limits_keep_their_digits():
    event = CanonicalEvent.model_validate_json(
        json.dumps(_order_event(total="59.90", subtotal="-0", lines=[_line("18.0000")])),
        context={STORED: True},
    )
    assert event.order is not None
    assert str(event.order.total) == "59.90"
    assert str(event.order.subtotal) == "-0"
    assert str(event.order.lines[0].unit_price) == "18.0000"
