"""What dispatch decides about one touchpoint: a message to send (``Pending``) or how its row
ends (``Outcome``: sent, skipped, deferred, retrying, failed, unknown), as the column values
the recording step writes. Shared by the deciding and the sending halves of dispatch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from postpurchase.channels.senders import EmailSender, SmsSender
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import RenderedEmail, RenderedSms
from postpurchase.store.models import Channel, TouchpointStatus

if TYPE_CHECKING:  # deciding and chunk_rows build on this module; these are only types here
    from postpurchase.dispatch.chunk_rows import CustomerRow
    from postpurchase.dispatch.deciding import CampaignLookup

# Rows a chunk's worker holds: claimed, or being handed to the provider by an earlier try.
HELD = (TouchpointStatus.CLAIMED, TouchpointStatus.SENDING)


@dataclass(frozen=True)
class ShopOutlet:
    """One shop's side of dispatch: how its messages look (profile), its campaigns as they
    apply to it (lookup, with its overrides), and the senders of its provider accounts."""

    profile: ShopProfile
    lookup: CampaignLookup
    email: EmailSender
    sms: SmsSender


# The outlet of a touchpoint's shop, by shop key ('' the default shop).
ShopOutlets = Callable[[str], ShopOutlet]


@dataclass
class Pending:
    touchpoint_id: int
    campaign_id: str
    channel: Channel
    address: str
    customer: CustomerRow
    rendered: RenderedEmail | RenderedSms
    unsubscribe_url: str
    claims: int  # how many times the touchpoint was claimed, this time included
    shop: ShopOutlet  # its shop: the sender and the From


@dataclass
class Outcome:
    touchpoint_id: int
    kind: str  # sent, skipped, deferred, retrying, failed, unknown
    values: dict[str, Any]
    opted_out_phone: str | None = None
    answered: bool = False  # the provider said what became of it: true even if late

    @classmethod
    def sent(cls, tp: int, message_id: str, at: datetime) -> Outcome:
        values = {
            "status": TouchpointStatus.SENT,
            "provider_message_id": message_id,
            "sent_at": at,
            "reason": None,
        }
        return cls(tp, "sent", values, answered=True)

    @classmethod
    def skipped(cls, tp: int, reason: str) -> Outcome:
        return cls(tp, "skipped", {"status": TouchpointStatus.SKIPPED, "reason": reason})

    @classmethod
    def failed(cls, tp: int, reason: str, *, answered: bool = False) -> Outcome:
        values = {"status": TouchpointStatus.FAILED, "reason": reason}
        return cls(tp, "failed", values, answered=answered)

    @classmethod
    def unknown(cls, tp: int, reason: str) -> Outcome:
        return cls(tp, "unknown", {"status": TouchpointStatus.UNKNOWN, "reason": reason})

    @classmethod
    def deferred(cls, tp: int, until: datetime) -> Outcome:
        values = {
            "status": TouchpointStatus.PLANNED,
            "due_at": until,
            "attempts": 0,
            "claimed_by": None,
            "reason": f"deferred by quiet hours to {until.isoformat(timespec='minutes')}",
        }
        return cls(tp, "deferred", values)

    @classmethod
    def retrying(cls, tp: int, until: datetime, reason: str) -> Outcome:
        # attempts is kept: it counts the rounds, and bounds them
        values = {
            "status": TouchpointStatus.PLANNED,
            "due_at": until,
            "claimed_by": None,
            "reason": f"{reason}; next try {until.isoformat(timespec='minutes')}",
        }
        return cls(tp, "retrying", values)
