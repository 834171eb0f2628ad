"""What a channel sends: a fully rendered email or SMS with its addressing, and the senders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (a customer's data export to the shop's privacy contact)."""

    filename: str
    content_type: str  # e.g. application/json
    data: bytes


# A named tuple, not a frozen dataclass: made for every email sent, and cheaper to make.
class OutgoingEmail(NamedTuple):
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


class EmailFlight(Protocol):
    """Emails sent at once (``WaveEmailSender.start_emails``), their answers to come."""

    def answers(self, *, quiet: float) -> Iterator[tuple[int, str | Exception] | None]:
        """``(index, message id or what send_email would raise)`` of each email as its
        answer comes, in any order; ``None`` whenever nothing came for ``quiet`` seconds."""
        ...

    def close(self) -> None:
        """Give up on the answers still to come."""
        ...


@runtime_checkable
class WaveEmailSender(EmailSender, Protocol):
    """An email sender that can also send many emails at once from one thread (when
    ``sends_at_once``), their answers read later on that thread."""

    @property
    def sends_at_once(self) -> bool: ...

    def start_emails(self, messages: Sequence[OutgoingEmail]) -> EmailFlight: ...


class SmsSender(Protocol):
    """Sends one SMS; returns the provider's message id or raises a ProviderError."""

    name: str

    def send_sms(self, message: OutgoingSms) -> str: ...
