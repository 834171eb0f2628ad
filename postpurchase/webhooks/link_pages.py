"""What every page behind a signed link shares (unsubscribe, the surveys, the review page):
the app's settings or a plain 503 page, the link's verified claim, and the page itself.

A link is signed for one purpose (``postpurchase.messages.tokens``); a token that does not
verify, with any current or previous signing key, for the route's purpose gets the same "not
valid" page on every route.
"""

from __future__ import annotations

import html
import logging

from fastapi.responses import HTMLResponse

from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.messages.tokens import LinkClaim, Purpose, signing_keys, verify
from postpurchase.settings import Settings
from postpurchase.shop_settings.customers import customer_shop
from postpurchase.shop_settings.directory import ShopSettings, default_shop
from postpurchase.webhooks.deps import Runtime

log = logging.getLogger(__name__)

COMMENT_BOX = (
    '<p><label>Anything to tell us? (optional)<br><textarea name="comment" rows="4" '
    'maxlength="2000" style="width:100%;box-sizing:border-box;font-size:16px;padding:8px;">'
    "</textarea></label></p>"
)


class Misconfigured(Exception):
    """The settings cannot be read: answered with a plain 503 page (no shop name to show)."""


def misconfigured_page() -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><title>Please try again</title><p>Please try again later.</p>",
        status_code=503,
        headers={"Retry-After": "60"},
    )


def link_settings(runtime: Runtime, what: str) -> Settings:
    """The app's settings; Misconfigured (logged, naming ``what``) when they are unusable."""
    try:
        return runtime.settings()
    except ConfigError as exc:
        log.error("%s is misconfigured: %s", what, exc)
        raise Misconfigured from None


def link_claim(settings: Settings, token: str, purpose: Purpose) -> LinkClaim | None:
    """What a genuine link for ``purpose`` says; None for any other token."""
    try:
        return verify(signing_keys(settings), token, purpose)
    except InvalidInput:
        return None


def invalid_page(settings: Settings, what: str, status: int = 400) -> HTMLResponse:
    return page(settings, "Link not valid", f"This {what} link is not valid.", status)


def busy_page(settings: Settings) -> HTMLResponse:
    response = page(
        settings, "Please try again", "We could not save this just now. Please try again.", 503
    )
    response.headers["Retry-After"] = "60"
    return response


def claim_shop(runtime: Runtime, settings: Settings, claim: LinkClaim) -> ShopSettings:
    """The shop of the customer a link was signed for (blocking: a database read)."""
    try:
        store = runtime.factory()
    except ConfigError:
        return default_shop(settings)
    return customer_shop(settings, store, claim.customer_id)


def page(
    settings: Settings,
    title: str,
    text: str,
    status: int,
    extra: str = "",
    *,
    shop: ShopSettings | None = None,
) -> HTMLResponse:
    """A small page in the colours of ``shop`` (default: the engine's own shop); ``text``
    and ``extra`` are HTML (escape first)."""
    brand = shop or default_shop(settings)
    name = html.escape(brand.name)
    colours = brand.colours  # validated hex codes: safe in a style attribute
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · {name}</title></head>"
        "<body style='font-family:Helvetica,Arial,sans-serif;"
        f"background:{colours['background']};color:#2b2b2b;'>"
        "<div style='max-width:480px;margin:64px auto;background:#fff;padding:32px;"
        "border-radius:8px;text-align:center;'>"
        f"<h1 style='color:{colours['primary']};font-size:22px;'>{html.escape(title)}</h1>"
        f"<p>{text}</p>{extra}<p style='color:#7a746b;font-size:13px;'>{name}</p>"
        "</div></body></html>"
    )
    return HTMLResponse(body, status_code=status)
