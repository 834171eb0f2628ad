"""The answer to an SMS that says HELP: the help text of the shop the customer texted.

Twilio's inbound webhook says which number (``To``), Messaging Service and account the text
reached; a shop with its own Twilio sender (``shops.yaml``) is told apart by these. A text to
the engine's own number, or to an account several shops share, gets the engine's text: the
number alone cannot say which of them the customer meant.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopDirectory, ShopSettings, current_directory

log = logging.getLogger(__name__)


def shop_texted(directory: ShopDirectory, form: Mapping[str, str]) -> ShopSettings:
    """The shop whose number or Messaging Service received the text; else the one shop
    whose account did; else the default shop."""
    to, service = form.get("To", "").strip(), form.get("MessagingServiceSid", "").strip()
    account = form.get("AccountSid", "").strip()
    by_account = []
    for shop in directory.configured():
        twilio = shop.twilio
        if twilio is None:
            continue
        if (to and twilio.from_number == to) or (
            service and twilio.messaging_service_sid == service
        ):
            return shop
        if account and twilio.account_sid == account:
            by_account.append(shop)
    return by_account[0] if len(by_account) == 1 else directory.default


def help_text(settings: Settings, form: Mapping[str, str]) -> str:
    """The HELP answer for the shop ``form`` (Twilio's inbound webhook) reached; the engine's
    when the shops file cannot be read (a customer asking for help still gets an answer)."""
    try:
        directory = current_directory(settings)
    except ConfigError as exc:
        log.error("HELP answered with the engine's text: %s", exc)
        return settings.shop_sms_help_text
    return shop_texted(directory, form).sms_help_text
