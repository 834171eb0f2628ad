"""The default channel: each message becomes files under ``var/outbox/`` instead of leaving.

Email: ``<touchpoint>-<campaign>.eml`` (open it in any mail client) and ``.json``; SMS:
``<touchpoint>-<campaign>.sms.json``. Writing the same touchpoint again replaces its files, so
a retried send never makes a second message.

Each ``.eml`` carries ``Date`` (when it was sent) and a ``Message-ID`` derived from the
touchpoint, so mail clients sort and thread the outbox like a real mailbox and a re-written
message keeps its identity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from postpurchase.channels.senders import OutgoingEmail, OutgoingSms


class OutboxSender:
    """Writes emails and SMS as files; needs no account and never fails for the recipient."""

    name = "outbox"

    def __init__(
        self, directory: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.directory = directory
        self.clock = clock

    def send_email(self, message: OutgoingEmail) -> str:
        mail = EmailMessage()
        mail["From"] = formataddr((message.from_name, message.from_email))
        mail["To"] = formataddr((message.to_name or "", message.to_email))
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(self.clock().astimezone(UTC))
        mail["Message-ID"] = message_id(message)
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail["X-Postpurchase-Touchpoint"] = str(message.touchpoint_id)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            # 8bit, not base64: the file stays readable (and searchable, for an erasure)
            mail.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
                cte="8bit",
            )
        stem = f"{message.touchpoint_id:08d}-{message.campaign_id}"
        self._write(f"{stem}.eml", mail.as_bytes())
        summary = {
            "channel": "email",
            "touchpoint_id": message.touchpoint_id,
            "campaign_id": message.campaign_id,
            "to": message.to_email,
            "subject": message.subject,
            "text": message.text,
            "unsubscribe_url": message.unsubscribe_url,
            "attachments": [a.filename for a in message.attachments],
        }
        self._write(f"{stem}.json", json.dumps(summary, indent=2, ensure_ascii=False).encode())
        return f"outbox-{message.touchpoint_id}"

    def send_sms(self, message: OutgoingSms) -> str:
        summary = {
            "channel": "sms",
            "touchpoint_id": message.touchpoint_id,
            "campaign_id": message.campaign_id,
            "to": message.to,
            "body": message.body,
            "segments": message.segments,
        }
        stem = f"{message.touchpoint_id:08d}-{message.campaign_id}"
        self._write(f"{stem}.sms.json", json.dumps(summary, indent=2, ensure_ascii=False).encode())
        return f"outbox-{message.touchpoint_id}"

    def _write(self, name: str, data: bytes) -> None:
        # Write then rename: a reader never sees half a message.
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, self.directory / name)


def message_id(message: OutgoingEmail) -> str:
    """RFC 5322 Message-ID: the same for every write of one touchpoint, unique between them.

    The domain is the sender's, as a mail server would use; the touchpoint id alone is unique
    in one database, the campaign keeps ids readable for people looking at headers.
    """
    domain = message.from_email.rpartition("@")[2] or "localhost"
    return f"<touchpoint-{message.touchpoint_id}.{message.campaign_id}@{domain}>"
