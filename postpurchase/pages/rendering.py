"""Turning a page's data into HTML: one Jinja environment over the package's templates, and
the few ways of writing numbers and times that every page shares.

Links in the templates are relative (``root`` leads back to the pages' top), so the pages
work under any base path and behind any proxy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from postpurchase.pages.auth import CSRF_FIELD, PageUser
from postpurchase.pages.context import pages_context
from postpurchase.pages.shop_choice import EVERY_SHOP, ShopChoice, shop_choice
from postpurchase.settings import PROJECT_ROOT

_ENV = Environment(
    loader=PackageLoader("postpurchase.pages", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in the largest unit that fits ("3 min ago")."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{span((now or datetime.now(UTC)) - moment)} ago"


def span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def stamp(moment: datetime | str | None) -> str:
    """A time as ops read it: UTC, to the minute."""
    if moment is None:
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def money(value: Decimal | str | None, currency: str | None = None) -> str:
    if value is None:
        return "–"
    amount = Decimal(value).quantize(Decimal("0.01"))
    return f"{amount:,} {currency}" if currency else f"{amount:,}"


def project_path(path: Path | str) -> str:
    """A path as the project names it (``config/campaigns.yaml``) when it is inside the project."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)


_ENV.filters.update(ago=ago, percent=percent, stamp=stamp, money=money, project_path=project_path)


def page(
    request: Request,
    template: str,
    *,
    user: PageUser,
    root: str = "",
    status_code: int = 200,
    shop: ShopChoice | None = None,
    keep: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` rendered for ``user``; ``root`` is the relative way back to the
    pages' top from this URL ("" at the top level, "../" one level down). ``shop`` is the
    shop shown (read from the request when not given); ``keep`` the page's own parameters,
    kept when another shop is chosen."""
    if shop is None:
        shop = shop_choice(request, pages_context(request).settings())
    html = _ENV.get_template(template).render(
        user=user,
        root=root or "./",
        shop=shop,
        every_shop=EVERY_SHOP,
        keep=keep or {},
        csrf_field=CSRF_FIELD,
        notice=request.query_params.get("notice"),
        problem=request.query_params.get("problem"),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def refusal(status: int, reason: str) -> HTMLResponse:
    """The page for a request the user may not make (no login, or not allowed)."""
    html = _ENV.get_template("refused.html").render(status=status, reason=reason)
    return HTMLResponse(html, status_code=status)
