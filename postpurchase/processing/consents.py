"""Consent a batch of events states, merged into its customers (rules: ``postpurchase.consent``).

Every answer a snapshot gives becomes a statement, dated by the consent's own time when the
platform gives one (Shopify's ``consent_updated_at``), else by the snapshot's ``updated_at``,
else by when the event happened. Statements are applied oldest first, so the order in which
webhooks arrive does not decide the outcome; each change is kept in ``consent_changes`` with
the inbox row it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from postpurchase import consent
from postpurchase.store.models import ConsentPurpose, ConsentState
from postpurchase.stored_events import StoredCustomer

if TYPE_CHECKING:
    from postpurchase.processing.batch import CustomerRecord, Key, SourcedEvent

# A snapshot's consent fields: its answer, the answer's own time, and the purpose.
_FIELDS = tuple(
    (name, f"{name}_at", purpose)
    for name, purpose in (
        ("email_marketing_consent", ConsentPurpose.EMAIL_MARKETING),
        ("sms_marketing_consent", ConsentPurpose.SMS_MARKETING),
        ("sms_consent", ConsentPurpose.SMS),
    )
)
_CONSENT_ONLY = {"external_id", *(name for field in _FIELDS for name in field[:2])}
# The values of a snapshot's other fields, as a tuple.
_NOT_CONSENT = attrgetter(*(n for n in StoredCustomer.__struct_fields__ if n not in _CONSENT_ONLY))


def consent_only(snapshot: StoredCustomer) -> bool:
    """Whether the snapshot says nothing but consent (a Shopify consent topic): every other
    field UNSET (not given, not even as null)."""
    others = _NOT_CONSENT(snapshot)
    return others.count(UNSET) == len(others)


def _source(platform: str, snapshot: StoredCustomer) -> str:
    if platform == "generic":
        return consent.SHOP  # the shop's own system, on the customer's word
    return consent.CONSENT_TOPIC if consent_only(snapshot) else consent.PLATFORM_PAYLOAD


def statements_of(item: SourcedEvent) -> list[tuple[Key, consent.Statement]]:
    """The consent statements ``item``'s customer snapshots make, by customer key."""
    event, order = item.event, item.order
    found = []
    for snapshot in (event.customer, order.customer if order else None):
        # Most snapshots say nothing of consent: a field they do not carry is None.
        if snapshot is None or (
            snapshot.email_marketing_consent is None
            and snapshot.sms_marketing_consent is None
            and snapshot.sms_consent is None
        ):
            continue
        key = (item.source, item.shop, snapshot.external_id)
        version = snapshot.updated_at or item.occurred_at
        # the same for each of the snapshot's answers: worked out once, not per answer
        source = _source(item.source, snapshot)
        reference = f"inbox:{item.inbox_id}"
        for name, at_name, purpose in _FIELDS:
            given = getattr(snapshot, name)
            if given is None:
                continue
            stated_at = getattr(snapshot, at_name)
            statement = consent.Statement(
                purpose=purpose,
                state=ConsentState.GRANTED if given else ConsentState.DENIED,
                at=stated_at or version,
                source=source,
                reference=reference,
                dated=stated_at is not None,
            )
            found.append((key, statement))
    return found


def merge_consent(
    customers: Mapping[Key, CustomerRecord], items: Sequence[SourcedEvent]
) -> list[dict[str, Any]]:
    """Apply the batch's statements to ``customers`` (records, written back by the caller);
    returns the changes, rows for ``consent_changes`` that the caller inserts once the
    customers they name are written."""
    statements = [(key, s, item.inbox_id) for item in items for key, s in statements_of(item)]
    statements.sort(key=lambda entry: (entry[1].at, entry[2]))
    changes: list[dict[str, Any]] = []
    for key, statement, _ in statements:
        consent.apply(customers[key], statement, changes)
    return changes
