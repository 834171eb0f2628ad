"""``when`` conditions: Jinja expressions over an order, its customer, its items (and a tier
change), compiled by the sandboxed environment. Python ``eval`` is never involved.

The names an expression may use, and what they hold, are those of ``condition_context``:

- ``order``: name, currency, total, subtotal, total_tax, total_discounts, total_shipping,
  refunded_amount (Decimal), financial_status, fulfillment_status, item_count,
  skus, vendors, and product_types, product_tags, collections (lists; these three from the
  product catalogue and lower-cased), placed_at ... delivered_at (aware datetimes or none);
- ``customer``: first_name, last_name, email, phone, locale, time_zone,
  email_marketing_consent, sms_consent, sms_marketing_consent ("granted", "denied" or
  "unknown": compare them, e.g. ``customer.sms_marketing_consent == "granted"``);
- ``items``: a list of {product_id, title, product_type, vendor, sku, quantity, unit_price,
  tags, collections, image_url, product_url}, completed from the catalogue as stored;
- ``tier``: {from_tier, to_tier} for ``tier.changed`` campaigns, else none;
- ``review``: {rating (1-5 or none), product_id} for ``review.submitted`` campaigns planned
  from the event, else none.

A name outside these is an error at validation; an attribute missing at evaluation
(``order.totl``) raises, because the environment's undefined is strict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

CONDITION_NAMES = frozenset({"order", "customer", "items", "tier", "review"})

_ENV = SandboxedEnvironment(undefined=StrictUndefined)
# A condition may use only CONDITION_NAMES, never Jinja's globals (range, dict, ...): without
# them, each evaluation's context is built from the condition's names alone, a third of the
# time it took to copy the globals in.
_ENV.globals.clear()


class ConditionError(Exception):
    """A condition could not be evaluated against the data it was given."""


@dataclass(frozen=True)
class Condition:
    """A compiled ``when`` expression; ``matches`` tells whether it holds."""

    source: str
    # The compiled expression's template: what Jinja's ``TemplateExpression`` renders.
    _template: Template = field(repr=False, compare=False)

    def matches(self, context: Mapping[str, Any]) -> bool:
        """Evaluate against ``context``; ConditionError names the problem when it cannot."""
        # Rendered as ``TemplateExpression.__call__`` does, but in a context made directly:
        # Jinja's own way also copied the names once more and listed the template's (empty)
        # globals through a ChainMap, two thirds of the time of a condition, which planning
        # evaluates for every event a campaign with one is decided for.
        template = self._template
        evaluation = _ENV.context_class(_ENV, dict(context), template.name, {})
        try:
            for _ in template.root_render_func(evaluation):
                pass
            return bool(evaluation.vars["result"])
        except TemplateError as exc:
            raise ConditionError(f"when {self.source!r}: {exc.message or exc}") from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ConditionError(f"when {self.source!r}: {exc}") from None


def compile_condition(source: str) -> Condition:
    """Compile ``source``; ValueError on a syntax error or a name outside CONDITION_NAMES."""
    try:
        template = _ENV.compile_expression(source, undefined_to_none=False)._template
        unknown = meta.find_undeclared_variables(_ENV.parse("{{ (" + source + ") }}"))
    except TemplateError as exc:
        raise ValueError(f"expression {source!r} does not compile: {exc.message or exc}") from None
    unknown -= CONDITION_NAMES
    if unknown:
        allowed = ", ".join(sorted(CONDITION_NAMES))
        raise ValueError(
            f"expression {source!r} uses unknown name(s) {', '.join(sorted(unknown))}; "
            f"conditions can use {allowed}"
        )
    return Condition(source, template)
