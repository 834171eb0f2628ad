"""The hosted review page of an order, and the published reviews.

``GET /r/{token}`` shows an order's review page, ``POST /r/{token}`` stores what it sends.
``GET /reviews.json`` and ``GET /reviews/google-product-reviews.xml`` publish the reviews
(see ``postpurchase.reviews.publishing``).

The link in the review request is signed for the customer and the touchpoint (so for the
order); it never expires, but a review can only be edited for ``review_edit_days``. A GET
never changes anything (mail scanners open every link); the page has, per product, five
stars, a title and a text, then the name to show and one button. Products left without
stars are not reviewed. With the database down the page asks to try again (503).
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from postpurchase.exceptions import ConfigError
from postpurchase.feature_settings import ReviewSettings
from postpurchase.messages.tokens import LinkClaim
from postpurchase.reviews import collecting, publishing
from postpurchase.reviews.rewards import shop_loyalty_config
from postpurchase.settings import Settings
from postpurchase.store.database import reading, transaction
from postpurchase.webhooks.deps import Runtime, RuntimeDep
from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.link_pages import (
    busy_page,
    claim_shop,
    invalid_page,
    link_claim,
    link_settings,
    page,
)
from postpurchase.webhooks.rejections import Rejection

log = logging.getLogger(__name__)
router = APIRouter()

_FORM_LIMIT = 128 * 1024  # a few products' texts of 5000 characters, percent-encoded
_BUTTON = "padding:12px 22px;font-size:16px;width:100%;"
_FIELD = "width:100%;box-sizing:border-box;font-size:16px;padding:8px;margin:4px 0;"


def _load(
    runtime: Runtime, reviews: ReviewSettings, claim: LinkClaim
) -> tuple[collecting.ReviewOrder | None, str]:
    with reading(runtime.factory()) as session:
        target = collecting.review_order(
            session,
            customer_id=claim.customer_id,
            touchpoint_id=claim.touchpoint_id,
            settings=reviews,
            now=datetime.now(UTC),
        )
        if target is None:
            return None, ""
        named = next((p.review.display_name for p in target.products if p.review), None)
        return target, named or collecting.default_display_name(target.customer)


@router.get("/r/{token}")
def review_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "the review page")
    claim = link_claim(settings, token, "review")
    if claim is None:
        return invalid_page(settings, "review")
    try:
        target, name = _load(runtime, settings, claim)
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not show a review page: %s", type(exc).__name__)
        return busy_page(settings)
    if target is None:
        return invalid_page(settings, "review", 404)
    order_name = html.escape(target.order.name or f"#{target.order.external_id}")
    return page(
        settings,
        "Review your purchase",
        f"Your order {order_name}: rate what you bought. Your review is shown with the name "
        "below and a verified-buyer mark.",
        200,
        extra=_form(token, target, name, settings.review_edit_days),
        shop=claim_shop(runtime, settings, claim),
    )


def _form(token: str, target: collecting.ReviewOrder, name: str, edit_days: int) -> str:
    sections = []
    for n, product in enumerate(target.products):
        review = product.review
        title = html.escape(product.title)
        anchor = html.escape(product.key.replace(":", "-"), quote=True)
        image = (
            f'<img src="{html.escape(product.image_url, quote=True)}" alt="" width="96" '
            'height="96" style="border-radius:6px;">'
            if product.image_url and product.image_url.startswith(("https://", "http://"))
            else ""
        )
        if not product.editable and review is not None:
            sections.append(
                f'<section id="{anchor}" style="text-align:left;margin:24px 0;">{image}'
                f"<h2 style='font-size:18px;'>{title}</h2><p>Your review: {review.rating} of 5 "
                f"stars. The {edit_days} days to edit it are over.</p></section>"
            )
            continue
        stars = "".join(
            f'<label style="font-size:26px;margin-right:6px;"><input type="radio" '
            f'name="rating-{n}" value="{s}"{" checked" if review and review.rating == s else ""}'
            f' aria-label="{s} of 5 stars">{"★" * s}</label><br>'
            for s in range(5, 0, -1)
        )
        key = html.escape(product.key, quote=True)
        sections.append(
            f'<section id="{anchor}" style="text-align:left;margin:24px 0;">{image}'
            f"<h2 style='font-size:18px;'>{title}</h2>"
            f'<input type="hidden" name="product-{n}" value="{key}">'
            f"<fieldset style='border:0;padding:0;'><legend>Your rating</legend>{stars}</fieldset>"
            f'<label>Title<input name="title-{n}" maxlength="{collecting.TITLE_LIMIT}" '
            f'style="{_FIELD}" value="{html.escape(review.title if review else "", quote=True)}">'
            f'</label><label>Your review<textarea name="body-{n}" rows="5" '
            f'maxlength="{collecting.BODY_LIMIT}" style="{_FIELD}">'
            f"{html.escape(review.body if review else '')}</textarea></label></section>"
        )
    return (
        f'<form method="post" action="{html.escape(token, quote=True)}">{"".join(sections)}'
        f'<label style="display:block;text-align:left;">Name shown with your review'
        f'<input name="display_name" maxlength="{collecting.NAME_LIMIT}" style="{_FIELD}" '
        f'value="{html.escape(name, quote=True)}"></label>'
        f'<p style="color:#7a746b;font-size:13px;">You can change your review for {edit_days} '
        "days. Reviews with links or contact details are read by a person first.</p>"
        f'<button type="submit" style="{_BUTTON}">Send my review</button></form>'
    )


def answers_from_form(form: dict[str, str]) -> list[collecting.Answer]:
    """The products the form rated (those without stars are left out); ValueError on a
    rating other than 1 to 5."""
    answers = []
    n = 0
    while f"product-{n}" in form:
        rating = form.get(f"rating-{n}", "").strip()
        if rating:
            if rating not in {"1", "2", "3", "4", "5"}:
                raise ValueError("Please choose from 1 to 5 stars.")
            answers.append(
                collecting.Answer(
                    product_key=form[f"product-{n}"],
                    rating=int(rating),
                    title=form.get(f"title-{n}", ""),
                    body=form.get(f"body-{n}", ""),
                )
            )
        n += 1
    return answers


@router.post("/r/{token}")
async def review_answer(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "the review page")
    try:
        body = await read_body(request, _FORM_LIMIT)
    except Rejection as rejection:
        return page(settings, "Not accepted", html.escape(rejection.reason), 413)
    claim = link_claim(settings, token, "review")
    if claim is None:
        return invalid_page(settings, "review")
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        answers = answers_from_form(form)
    except ValueError as exc:
        return page(settings, "Not accepted", html.escape(str(exc)), 422)
    if not answers:
        return page(settings, "Not accepted", "Please choose stars for at least one product.", 422)
    try:
        outcome = await run_in_threadpool(
            _save, runtime, settings, claim, answers, form.get("display_name", "")
        )
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not store a review: %s", type(exc).__name__)
        return busy_page(settings)
    if outcome is None:
        return invalid_page(settings, "review", 404)
    saved, held, refused = outcome
    if not saved:
        why = html.escape("; ".join(sorted(set(refused))))
        return page(settings, "Not saved", f"Your review was not saved: {why}.", 409)
    text = "Thank you for your review!" + (
        " It will appear once a person has read it." if held else ""
    )
    shop = await run_in_threadpool(claim_shop, runtime, settings, claim)
    return page(settings, "Thank you!", text, 200, shop=shop)


def _save(
    runtime: Runtime,
    settings: Settings,
    claim: LinkClaim,
    answers: list[collecting.Answer],
    display_name: str,
) -> tuple[int, bool, list[str]] | None:
    """(reviews saved, whether one is held for a person, why others were refused)."""
    now = datetime.now(UTC)
    loyalty = shop_loyalty_config(settings)
    with transaction(runtime.factory()) as session:
        target = collecting.review_order(
            session,
            customer_id=claim.customer_id,
            touchpoint_id=claim.touchpoint_id,
            settings=settings,
            now=now,
        )
        if target is None:
            return None
        outcome = collecting.save_reviews(
            session,
            target,
            answers,
            display_name=display_name,
            settings=settings,
            now=now,
            support=settings,
            loyalty=loyalty,
        )
        held = any(r.held_because for r in outcome.saved)
        return len(outcome.saved), held, list(outcome.refused.values())


# Published reviews: public, read-only, cacheable. Storefront widgets and Google's fetcher
# revalidate with If-None-Match and get a 304 until a review is published or withdrawn.
_CACHE = "public, max-age=300"


def _published(runtime: Runtime) -> list[publishing.PublicReview]:
    with reading(runtime.factory()) as session:
        return publishing.published_reviews(session, shop_url=runtime.settings().shop_url)


def _cacheable(request: Request, body: bytes, media_type: str) -> Response:
    etag = publishing.etag_of(body)
    headers = {"ETag": etag, "Cache-Control": _CACHE}
    asked = [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]
    if etag in asked or "*" in asked:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _unavailable() -> Response:
    return Response(
        '{"detail":"temporarily unavailable"}',
        status_code=503,
        media_type="application/json",
        headers={"Retry-After": "60"},
    )


@router.get("/reviews.json")
async def reviews_json(
    request: Request, runtime: RuntimeDep, product: str | None = None
) -> Response:
    """Published reviews and the average rating per product (``?product=ID``: one product)."""
    link_settings(runtime, "the review feed")  # unusable settings: the 503 page
    try:
        found = await run_in_threadpool(_published, runtime)
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not list published reviews: %s", type(exc).__name__)
        return _unavailable()
    return _cacheable(
        request, publishing.reviews_json(found, product_id=product), "application/json"
    )


@router.get("/reviews/google-product-reviews.xml")
async def google_product_reviews(request: Request, runtime: RuntimeDep) -> Response:
    """The Google Product Reviews feed (schema 2.3) of every published review."""
    settings = link_settings(runtime, "the review feed")
    try:
        found = await run_in_threadpool(_published, runtime)
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not build the review feed: %s", type(exc).__name__)
        return _unavailable()
    feed = publishing.google_feed(found, shop_name=settings.shop_name, favicon=None)
    return _cacheable(request, feed, "application/xml")
