"""The what-if page for marketers: replay the last days of real inbox history against an
edited campaigns file (or another file next to the current one) and compare, per campaign,
what it would plan, cancel and plan too late with what the current file plans.

The replay is ``processing.simulation.simulate_campaigns`` (the same as ``postpurchase
campaigns simulate FILE --days N``): it sends and stores nothing, so any signed-in user may run
it; the form still carries the pages' form token so no other site can start the work. A path
must name a file in the current campaigns file's folder: the page never reads elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.validation import load_campaign_source, load_valid_campaigns
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.pages.auth import FormReader, Reader
from postpurchase.pages.context import PagesContext, pages_context
from postpurchase.pages.rendering import page
from postpurchase.processing.simulation import Simulation, simulate_campaigns
from postpurchase.settings import Settings

router = APIRouter()
MAX_DAYS = 90


def _candidate(settings: Settings, text: str, path: str) -> CampaignConfig:
    """The campaigns to try: the file at ``path`` (in the current file's folder) when given,
    else the edited text. ConfigError with file:line problems, or a refused path."""
    if path.strip():
        folder = settings.campaigns_file.resolve().parent
        chosen = (folder / path.strip()).resolve()
        if chosen.parent != folder or not chosen.is_file():
            raise ConfigError(f"{path}: not a file in {folder}")
        return load_campaign_source(chosen, settings.templates_dir)
    return load_campaign_source(text, settings.templates_dir)


def run_simulation(context: PagesContext, text: str, path: str, days: int) -> Simulation:
    settings = context.settings()
    candidate = _candidate(settings, text, path)
    current = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    return simulate_campaigns(
        context.factory(),
        candidate,
        current,
        now=context.clock(),
        days=days,
        shop_zone=ZoneInfo(settings.shop_time_zone),
        loyalty=load_loyalty_config(settings.loyalty_config),
    )


def _form(
    settings: Settings, text: str | None = None, path: str = "", days: int = 30
) -> dict[str, Any]:
    if text is None:
        text = Path(settings.campaigns_file).read_text(encoding="utf-8")
    return {"text": text, "path": path, "days": days, "folder": settings.campaigns_file.parent}


@router.get("/whatif", response_class=HTMLResponse)
def whatif_page(request: Request, user: Reader) -> HTMLResponse:
    settings = pages_context(request).settings()
    return page(request, "whatif.html", user=user, simulation=None, errors=[], **_form(settings))


@router.post("/whatif", response_class=HTMLResponse)
def whatif_run(
    request: Request,
    user: FormReader,
    text: Annotated[str, Form()] = "",
    path: Annotated[str, Form()] = "",
    days: Annotated[int, Form(ge=1, le=MAX_DAYS)] = 30,
) -> HTMLResponse:
    context = pages_context(request)
    form = _form(context.settings(), text, path, days)
    try:
        simulation = run_simulation(context, text, path, days)
    except ConfigError as exc:
        return page(request, "whatif.html", user=user, simulation=None, status_code=422,
                    errors=str(exc).splitlines(), **form)  # fmt: skip
    return page(request, "whatif.html", user=user, simulation=simulation, errors=[],
                ran_at=context.clock(), **form)  # fmt: skip
