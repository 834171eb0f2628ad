"""Where a customer's data export goes: a file in the export folder, or an email to the
privacy contact of the customer's shop (``POSTPURCHASE_PRIVACY_EXPORT_TO``).

The contact is the shop's ``privacy_email`` in ``shops.yaml``, else its own support address,
else the engine's ``POSTPURCHASE_PRIVACY_CONTACT_EMAIL`` or support address; the email is
from the shop's sender, through the shop's own SendGrid account when it has one.

Emailed exports go through the configured email channel (SendGrid, or the outbox in the
embedded default), with the JSON document attached; the engine keeps no copy. The email is
sent inside the request's transaction: if sending fails, the request is not recorded and
waits for the next run; if the commit fails after a send, the next run sends it again (a
second copy to the shop's own contact, never to anyone else).
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable
from typing import Any

from postpurchase.channels.configured import shop_email_sender
from postpurchase.channels.senders import Attachment, EmailSender, OutgoingEmail
from postpurchase.privacy.export import export_dir, write_export
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, shop_directory

EmailSenderFactory = Callable[[], EmailSender]


def configured_sender(settings: Settings) -> EmailSenderFactory:
    """The email channel the settings choose, built once, when first needed."""

    @functools.cache
    def build() -> EmailSender:
        from postpurchase.channels.configured import email_sender

        return email_sender(settings)

    return build


def deliver_export(
    document: dict[str, Any],
    *,
    name: str,
    customer_id: int,
    shop_key: str,
    settings: Settings,
    sender: EmailSenderFactory | None = None,
) -> dict[str, Any]:
    """Send or write ``document`` (of a customer of the shop ``shop_key``) where the settings
    say; what to record of it. ConfigError when the shops file cannot be read for an email."""
    if settings.privacy_export_to == "email":
        return email_export(
            document,
            name=name,
            customer_id=customer_id,
            shop=shop_directory(settings).get(shop_key),
            settings=settings,
            sender=sender or configured_sender(settings),
        )
    return {"file": str(write_export(export_dir(settings), document, name=name))}


def email_export(
    document: dict[str, Any],
    *,
    name: str,
    customer_id: int,
    shop: ShopSettings,
    settings: Settings,
    sender: EmailSenderFactory,
) -> dict[str, Any]:
    """Send ``document`` to ``shop``'s privacy contact as ``<name>.json`` (from the shop's
    sender, through its own account when it has one); what to record."""
    data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
    contact = shop.privacy_email
    text = (
        f"The data export for customer {customer_id} is attached ({name}.json, "
        f"{len(data)} bytes): everything {shop.name} holds about them.\n\n"
        "Send it to the customer over a channel where you have confirmed who they are, "
        "within the deadline that applies (30 days under the GDPR)."
    )
    message_id = shop_email_sender(settings, shop, default=sender()).send_email(
        OutgoingEmail(
            touchpoint_id=0,  # no touchpoint: a message to the shop, not to a customer
            campaign_id=f"privacy_export_customer_{customer_id}",
            to_email=contact,
            to_name=None,
            from_email=shop.sender_email,
            from_name=shop.sender_name,
            subject=f"Data export for customer {customer_id}",
            html="<p>" + html.escape(text).replace("\n\n", "</p><p>") + "</p>",
            text=text,
            unsubscribe_url=shop.url,
            attachments=(Attachment(f"{name}.json", "application/json", data),),
        )
    )
    return {"emailed_to": contact, "message_id": message_id, "bytes": len(data)}
