"""The senders and rate limiters the settings ask for, with credentials from settings or
connections (``sendgrid_default``: password = API key, extra ``{"sandbox": true}``;
``twilio_default``: login = Account SID, password = auth token, extra
``{"messaging_service_sid": "MG...", "from": "+1..."}``). Settings win when both are set.

The connection lookup is passed in by whoever wires the senders (the dispatch task passes
Airflow's, ``airflow_glue.connections``), so channels never import Airflow-aware code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from postpurchase.channels.outbox import OutboxSender
from postpurchase.channels.ratelimit import RateLimiter, rate_limiter
from postpurchase.channels.senders import EmailSender, SmsSender
from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings

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
    from postpurchase.channels.twilio_sms import TwilioSmsSender

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
    return TwilioSmsSender(
        sid,
        token,
        messaging_service_sid=service,
        from_number=sender,
        status_callback=settings.public_base_url.rstrip("/") + "/webhooks/twilio/status",
        api_base_url=settings.twilio_api_base_url,
        timeout=settings.provider_timeout_seconds,
    )


def twilio_auth_token(
    settings: Settings, *, connection: ConnectionLookup = no_connections
) -> str | None:
    """The token that signs Twilio's webhooks to us (same resolution as for sending)."""
    if settings.twilio_auth_token is not None:
        return settings.twilio_auth_token.get_secret_value()
    conn = connection("twilio_default")
    return str(conn["password"]) if conn and conn.get("password") else None


def limiters(settings: Settings) -> tuple[RateLimiter, RateLimiter]:
    """(email, SMS) rate limiters: emails per second, SMS segments per second."""
    return (
        rate_limiter(settings.redis_url, "email", settings.email_rate_per_second),
        rate_limiter(settings.redis_url, "sms", settings.sms_rate_per_second),
    )
