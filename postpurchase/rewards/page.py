"""The hosted rewards page, linked from loyalty emails: ``/rewards/{token}``.

The token is a signed link (``postpurchase.messages.tokens``, purpose ``rewards``) naming the
customer. GET shows the balance, tier and progress to the next tier, the rewards on offer (a
button for each affordable one) and the codes held; it never changes anything, since mail
scanners open every link. A button POSTs the reward with an idempotency key made when the
page was shown, so a double click or a resubmitted form spends the points once.
"""

from __future__ import annotations

import html
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.messages.tokens import LinkClaim, sign, signing_key, verify
from postpurchase.rewards.account import Account, account_of
from postpurchase.rewards.redemption import RedemptionView
from postpurchase.rewards.web import RewardsDep, RewardsRuntime, Services
from postpurchase.shop_settings.customers import customer_shop
from postpurchase.store.models import RedemptionStatus

router = APIRouter()

_STYLE = (
    "body{font-family:Helvetica,Arial,sans-serif;background:#f4f1ec;color:#2b2b2b;margin:0}"
    ".card{max-width:560px;margin:40px auto;background:#fff;padding:28px;border-radius:8px}"
    "h1{color:#1f3d36;font-size:22px}.bar{background:#e6e1d8;border-radius:4px;height:10px}"
    ".fill{background:#1f3d36;height:10px;border-radius:4px}"
    "li{margin:10px 0}button{padding:8px 16px;font-size:15px}.muted{color:#7a746b}"
    ".code{font-family:monospace;font-size:18px;background:#f4f1ec;padding:4px 8px}"
)


def rewards_link(base_url: str, key: bytes, customer_id: int, touchpoint_id: int = 0) -> str:
    """The signed URL of a customer's rewards page (``touchpoint_id``: the message it is in)."""
    token = sign(key, LinkClaim("rewards", customer_id, touchpoint_id))
    return f"{base_url.rstrip('/')}/rewards/{token}"


def _e(value: object) -> str:
    return html.escape(str(value))


def _code_line(code: RedemptionView) -> str:
    until = code.expires_at.strftime("%d %b %Y")
    if code.status is RedemptionStatus.ISSUED:
        return (
            f"<li><span class='code'>{_e(code.code)}</span> {_e(code.reward)} · until {until}</li>"
        )
    if code.status is RedemptionStatus.PENDING:
        return f"<li>{_e(code.reward)}: your code is on its way; reload this page shortly</li>"
    return f"<li class='muted'>{_e(code.code or '')} {_e(code.reward)} · {code.status.value}</li>"


def render(svc: Services, account: Account, message: str = "") -> str:
    """The page, in the name of the customer's shop (blocking: may read the database)."""
    shop = _e(customer_shop(svc.settings, svc.redeemer.store, account.customer_id).name)
    key = secrets.token_urlsafe(12)  # one per page shown: a resubmitted form spends once
    offers = []
    for offer in account.rewards:
        if offer.affordable:
            action = (
                "<form method='post' style='display:inline'>"
                f"<input type='hidden' name='reward' value='{_e(offer.name)}'>"
                f"<input type='hidden' name='key' value='{key}-{_e(offer.name)}'>"
                f"<button type='submit'>Get it for {offer.points} points</button></form>"
            )
        else:
            action = f"<span class='muted'>{offer.missing} more points needed</span>"
        offers.append(
            f"<li><strong>{_e(offer.title)}</strong> ({_e(offer.description)}, "
            f"valid {offer.valid_days} days)<br>{action}</li>"
        )
    progress = (
        f"<p>{_e(account.next_tier)} next: {_e(account.progress_text)}</p>"
        f"<div class='bar'><div class='fill' style='width:{account.progress * 100:.0f}%'></div>"
        "</div>"
        if account.next_tier
        else "<p>You are in our top tier.</p>"
    )
    codes = "".join(
        _code_line(c) for c in account.codes if c.status is not RedemptionStatus.REFUNDED
    )
    greeting = f"Hi {_e(account.first_name)}," if account.first_name else "Hello,"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='robots' content='noindex'>"
        f"<title>Your rewards · {shop}</title><style>{_STYLE}</style></head><body>"
        f"<div class='card'><h1>Your rewards at {shop}</h1>"
        + (f"<p role='status'><strong>{message}</strong></p>" if message else "")
        + f"<p>{greeting} you have <strong>{account.balance} points</strong>. "
        f"Tier: <strong>{_e(account.tier)}</strong>.</p>{progress}"
        f"<h2>Rewards</h2><ul>{''.join(offers) or '<li>No rewards on offer yet.</li>'}</ul>"
        f"<h2>Your codes</h2><ul>{codes or '<li class=muted>None yet.</li>'}</ul>"
        + (
            f"<h2>Refer a friend</h2><p>Your referral code: <span class='code'>"
            f"{_e(account.referral_code)}</span>. Points for you both on their first order.</p>"
            if account.referral_code
            else ""
        )
        + "<p class='muted'>Codes are for your account only and work once.</p></div></body></html>"
    )


def _invalid(status: int = 400) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><html><body><p>This rewards link is not valid.</p></body></html>",
        status_code=status,
    )


async def _claim(rewards: RewardsRuntime, token: str) -> tuple[Services, LinkClaim] | None:
    svc = await rewards.ready()
    try:
        return svc, verify(signing_key(svc.settings), token, "rewards")
    except InvalidInput:
        return None


@router.get("/rewards/{token}")
async def rewards_page(token: str, rewards: RewardsDep) -> HTMLResponse:
    try:
        found = await _claim(rewards, token)
    except ConfigError:
        return HTMLResponse("Rewards are unavailable right now.", status_code=503)
    if found is None:
        return _invalid()
    svc, claim = found
    try:
        account = await run_in_threadpool(
            account_of, svc.redeemer.store, svc.config, customer_id=claim.customer_id
        )
    except Exception:  # noqa: BLE001 - an erased customer's old link: not found, not a 500
        return _invalid(404)
    return HTMLResponse(await run_in_threadpool(render, svc, account))


@router.post("/rewards/{token}")
async def redeem_from_page(
    request: Request,
    token: str,
    rewards: RewardsDep,
    reward: str = Form(...),
    key: str = Form(...),
) -> HTMLResponse:
    try:
        found = await _claim(rewards, token)
    except ConfigError:
        return HTMLResponse("Rewards are unavailable right now.", status_code=503)
    if found is None:
        return _invalid()
    svc, claim = found
    if svc.limiter.wait_needed(str(claim.customer_id)):
        return HTMLResponse("Too many requests; try again in a minute.", status_code=429)
    status = 200
    try:
        view = await run_in_threadpool(
            svc.redeemer.redeem, claim.customer_id, reward, f"page:{claim.customer_id}:{key[:80]}"
        )
        if view.code:
            message = f"Your code: <span class='code'>{_e(view.code)}</span>"
        elif view.status is RedemptionStatus.PENDING:
            message = "Your code is on its way: reload this page in a minute."
        else:
            message = "We could not make your code; your points are back."
    except InvalidInput as exc:
        message, status = _e(str(exc)), 409
    account = await run_in_threadpool(
        account_of, svc.redeemer.store, svc.config, customer_id=claim.customer_id
    )
    page = await run_in_threadpool(render, svc, account, message)
    return HTMLResponse(page, status_code=status)
