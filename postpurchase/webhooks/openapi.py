"""What the routes that read their raw body accept, for the OpenAPI schema.

The intake routes are plain Starlette routes and the provider routes read the raw body
themselves (signatures are over the exact bytes), so FastAPI cannot infer their requests.
These descriptions fill that in: the schema (served only with ``POSTPURCHASE_API_DOCS``)
then shows every route, and the fuzz tests generate requests for every route from it.
"""

from __future__ import annotations

from typing import Any

_JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
_RESPONSES = {
    "202": {"description": "accepted (or ignored: a topic recorded but not acted on)"},
    "200": {"description": "duplicate delivery (or WooCommerce's ping)"},
    "400": {"description": "malformed JSON or a missing header"},
    "401": {"description": "bad or missing signature, or replayed"},
    "413": {"description": "body over POSTPURCHASE_WEBHOOK_MAX_BODY_BYTES"},
    "415": {"description": "not application/json"},
    "422": {"description": "invalid content, with the field paths"},
    "503": {"description": "database or configuration unavailable (Retry-After)"},
}


def _header(name: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}


def _intake(summary: str, headers: list[str]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [_header(name) for name in headers],
            "requestBody": _JSON_OBJECT,
            "responses": _RESPONSES,
        }
    }


INTAKE_PATHS: dict[str, Any] = {
    "/webhooks/shopify": _intake(
        "Shopify webhook (HMAC over the raw body)",
        [
            "X-Shopify-Hmac-Sha256",
            "X-Shopify-Topic",
            "X-Shopify-Shop-Domain",
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
            "X-Shopify-Triggered-At",
        ],
    ),
    "/webhooks/woocommerce": _intake(
        "WooCommerce webhook (HMAC over the raw body)",
        ["X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-ID", "X-WC-Webhook-Source"],
    ),
    "/webhooks/events": _intake("Generic event (timestamped HMAC)", ["X-Postpurchase-Signature"]),
    "/privacy/requests": _intake(
        "Data subject request, export or erase (timestamped HMAC, as generic events)",
        ["X-Postpurchase-Signature"],
    ),
}

SENDGRID_EVENTS: dict[str, Any] = {
    "parameters": [
        _header("X-Twilio-Email-Event-Webhook-Signature"),
        _header("X-Twilio-Email-Event-Webhook-Timestamp"),
    ],
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
            }
        },
        "required": True,
    },
}


def _form(properties: dict[str, Any], *, signed: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            },
        }
    }
    if signed:
        extra["parameters"] = [_header("X-Twilio-Signature")]
    return extra


_TEXT = {"type": "string"}
TWILIO_STATUS = _form(
    {"MessageSid": _TEXT, "MessageStatus": _TEXT, "ErrorCode": _TEXT, "To": _TEXT, "From": _TEXT},
    signed=True,
)
TWILIO_INBOUND = _form(
    {"From": _TEXT, "To": _TEXT, "Body": _TEXT, "MessageSid": _TEXT}, signed=True
)
ONE_CLICK = _form({"List-Unsubscribe": _TEXT}, signed=False)
SURVEY_ANSWER = _form({"score": _TEXT}, signed=False)
