"""What a channel sends: a fully rendered email or SMS with its addressing, and the senders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (a customer's data export to the shop's privacy contact)."""

    filename: str
    content_type: str  # e.g. application/json
    data: bytes


@dataclass(frozen=True)
class OutgoingEmail:
    touchpoint_id: int
    campaign_id: str
    to_email: str
    to_name: str | None
    from_email: str
    from_name: str
    subject: str
    html: str
    text: str
    unsubscribe_url: str  # List-Unsubscribe, and the target of the one-click POST
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class OutgoingSms:
    touchpoint_id: int
    campaign_id: str
    to: str  # E.164
    body: str
    segments: int


class EmailSender(Protocol):
    """Sends one email; returns the provider's message id or raises a ProviderError."""

    name: str

    def send_email(self, message: OutgoingEmail) -> str: ...


class SmsSender(Protocol):
    """Sends one SMS; returns the provider's message id or raises a ProviderError."""

    name: str

    def send_sms(self, message: OutgoingSms) -> str: ...
