"""The senders and rate limiters the settings ask for, with credentials from settings or
connections (``sendgrid_default``: password = API key, extra ``{"sandbox": true}``;
``twilio_default``: login = Account SID, password = auth token, extra
``{"messaging_service_sid": "MG...", "from": "+1..."}``). Settings win when both are set.
A shop with its own provider account in ``shops.yaml`` gets senders of its own
(``shop_email_sender``, ``shop_sms_sender``); the others share the engine's.

The connection lookup is passed in by whoever wires the senders (the dispatch task passes
Airflow's, ``airflow_glue.connections``), so channels never import Airflow-aware code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from postpurchase.channels.outbox import OutboxSender
from postpurchase.channels.ratelimit import RateLimiter, rate_limiter
from postpurchase.channels.senders import EmailSender, SmsSender
from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, current_directory

# A connection's fields (login, password, host, extra) by id; None when it is not defined.
ConnectionLookup = Callable[[str], dict[str, Any] | None]


def no_connections(conn_id: str) -> None:
    """The lookup outside Airflow: settings only."""
    return None


def outbox(settings: Settings) -> OutboxSender:
    """The outbox under ``var_dir``: what the embedded default sends to."""
    return OutboxSender(settings.var_dir / "outbox")


def email_sender(
    settings: Settings, *, connection: ConnectionLookup = no_connections
) -> EmailSender:
    """The configured email channel; ConfigError if SendGrid is chosen without a key."""
    if settings.email_channel == "outbox":
        return outbox(settings)
    from postpurchase.channels.sendgrid_email import SendGridEmailSender

    conn = connection("sendgrid_default") if settings.sendgrid_api_key is None else None
    key = (
        settings.sendgrid_api_key.get_secret_value()
        if settings.sendgrid_api_key
        else (conn or {}).get("password")
    )
    if not key:
        raise ConfigError(
            "POSTPURCHASE_EMAIL_CHANNEL=sendgrid needs POSTPURCHASE_SENDGRID_API_KEY or the "
            "Airflow connection sendgrid_default (API key as its password)"
        )
    extra = (conn or {}).get("extra") or {}
    return SendGridEmailSender(
        key,
        host=settings.sendgrid_host,
        sandbox=settings.sendgrid_sandbox or bool(extra.get("sandbox")),
        timeout=settings.provider_timeout_seconds,
    )


def sms_sender(settings: Settings, *, connection: ConnectionLookup = no_connections) -> SmsSender:
    """The configured SMS channel; ConfigError if Twilio is chosen without credentials."""
    if settings.sms_channel == "outbox":
        return outbox(settings)
    conn = connection("twilio_default") if settings.twilio_auth_token is None else None
    extra = (conn or {}).get("extra") or {}
    sid = settings.twilio_account_sid or (conn or {}).get("login")
    token = (
        settings.twilio_auth_token.get_secret_value()
        if settings.twilio_auth_token
        else (conn or {}).get("password")
    )
    if not sid or not token:
        raise ConfigError(
            "POSTPURCHASE_SMS_CHANNEL=twilio needs POSTPURCHASE_TWILIO_ACCOUNT_SID and "
            "POSTPURCHASE_TWILIO_AUTH_TOKEN, or the Airflow connection twilio_default"
        )
    service = settings.twilio_messaging_service_sid or extra.get("messaging_service_sid")
    sender = settings.twilio_from_number or extra.get("from")
    if not service and not sender:
        raise ConfigError(
            "Twilio needs POSTPURCHASE_TWILIO_MESSAGING_SERVICE_SID or "
            "POSTPURCHASE_TWILIO_FROM_NUMBER (or messaging_service_sid/from in the connection)"
        )
    return _twilio_sender(settings, sid, token, service=service, sender=sender)


def shop_email_sender(
    settings: Settings,
    shop: ShopSettings,
    *,
    default: EmailSender,
    connection: ConnectionLookup = no_connections,
) -> EmailSender:
    """``shop``'s email sender: its own SendGrid account when it has one and emails go
    through SendGrid, else ``default`` (the engine's). ConfigError, naming the shop's line
    in the file, when its key cannot be found."""
    account = shop.sendgrid
    if settings.email_channel == "outbox" or account is None:
        return default
    from postpurchase.channels.sendgrid_email import SendGridEmailSender

    if account.api_key_env is not None:
        key = _environment(account.api_key_env, f"{shop.origin}: shop {shop.key}: sendgrid")
        sandbox = account.sandbox
    else:
        conn = _connection(connection, str(account.connection), shop)
        key = str(conn.get("password") or "")
        sandbox = account.sandbox or bool((conn.get("extra") or {}).get("sandbox"))
        if not key:
            raise ConfigError(
                f"{shop.origin}: shop {shop.key}: the connection {account.connection} has no "
                "password (the SendGrid API key)"
            )
    return SendGridEmailSender(
        key,
        host=settings.sendgrid_host,
        sandbox=settings.sendgrid_sandbox or sandbox,
        timeout=settings.provider_timeout_seconds,
    )


def shop_sms_sender(
    settings: Settings,
    shop: ShopSettings,
    *,
    default: SmsSender,
    connection: ConnectionLookup = no_connections,
) -> SmsSender:
    """``shop``'s SMS sender: its own Twilio account when it has one and SMS go through
    Twilio, else ``default``. Status callbacks go to the engine's public URL, where the
    account's token verifies them (``twilio_auth_tokens``)."""
    account = shop.twilio
    if settings.sms_channel == "outbox" or account is None:
        return default
    sid, token, extra = _twilio_credentials(shop, connection)
    service = account.messaging_service_sid or extra.get("messaging_service_sid")
    sender = account.from_number or extra.get("from")
    if not service and not sender:
        raise ConfigError(
            f"{shop.origin}: shop {shop.key}: twilio needs messaging_service_sid or "
            f"from_number (or messaging_service_sid/from in the connection {account.connection})"
        )
    return _twilio_sender(settings, sid, token, service=service, sender=sender)


def _twilio_credentials(
    shop: ShopSettings, connection: ConnectionLookup
) -> tuple[str, str, dict[str, Any]]:
    """(Account SID, auth token, the connection's extra) of ``shop``'s Twilio account."""
    account = shop.twilio
    assert account is not None  # callers checked
    if account.auth_token_env is not None:
        token = _environment(account.auth_token_env, f"{shop.origin}: shop {shop.key}: twilio")
        return str(account.account_sid), token, {}
    conn = _connection(connection, str(account.connection), shop)
    if not conn.get("login") or not conn.get("password"):
        raise ConfigError(
            f"{shop.origin}: shop {shop.key}: the connection {account.connection} needs the "
            "Account SID as login and the auth token as password"
        )
    return str(conn["login"]), str(conn["password"]), dict(conn.get("extra") or {})


def _environment(name: str, where: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{where}: the environment variable {name} is not set")
    return value


def _connection(lookup: ConnectionLookup, conn_id: str, shop: ShopSettings) -> dict[str, Any]:
    conn = lookup(conn_id)
    if conn is None:
        raise ConfigError(
            f"{shop.origin}: shop {shop.key}: no Airflow connection {conn_id!r} is defined"
        )
    return conn


def twilio_auth_tokens(
    settings: Settings, *, connection: ConnectionLookup = no_connections
) -> dict[str, str]:
    """The tokens that sign Twilio's webhooks to us (same resolution as for sending), by
    Account SID: each shop's own account's, and the engine's under ``""``. Empty when none
    is configured; ConfigError when the shops file or a shop's account cannot be read."""
    tokens = {}
    if settings.sms_channel == "twilio":
        for shop in current_directory(settings).configured():
            if shop.twilio is not None:
                sid, token, _ = _twilio_credentials(shop, connection)
                tokens[sid] = token
    if settings.twilio_auth_token is not None:
        tokens[""] = settings.twilio_auth_token.get_secret_value()
    else:
        conn = connection("twilio_default")
        if conn and conn.get("password"):
            tokens[""] = str(conn["password"])
    return tokens


def sendgrid_event_keys(settings: Settings) -> list[str]:
    """The public keys that may sign SendGrid events to us: the engine's account's, then each
    shop's own account's. ConfigError when the shops file cannot be read."""
    keys = [settings.sendgrid_event_public_key] if settings.sendgrid_event_public_key else []
    for shop in current_directory(settings).configured():
        if shop.sendgrid is not None and shop.sendgrid.event_public_key:
            keys.append(shop.sendgrid.event_public_key)
    return keys


def limiters(settings: Settings) -> tuple[RateLimiter, RateLimiter]:
    """(email, SMS) rate limiters: emails per second, SMS segments per second."""
    return (
        rate_limiter(settings.redis_url, "email", settings.email_rate_per_second),
        rate_limiter(settings.redis_url, "sms", settings.sms_rate_per_second),
    )


def _twilio_sender(
    settings: Settings, sid: str, token: str, *, service: str | None, sender: str | None
) -> SmsSender:
    """A Twilio sender of the account ``sid``, its delivery callbacks to this engine."""
    from postpurchase.channels.twilio_sms import TwilioSmsSender

    return TwilioSmsSender(
        sid,
        token,
        messaging_service_sid=service,
        from_number=sender,
        status_callback=settings.public_base_url.rstrip("/") + "/webhooks/twilio/status",
        api_base_url=settings.twilio_api_base_url,
        timeout=settings.provider_timeout_seconds,
    )
