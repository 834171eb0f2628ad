"""What every page gets the same way: settings, the engine's database, the clock, and what
Airflow knows (each injectable, so a test builds the app on its own database and clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

from postpurchase.pages.airflow_runs import AirflowReader
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory
from postpurchase.webhooks.deps import Runtime


@dataclass(frozen=True)
class PagesContext:
    runtime: Runtime
    clock: Callable[[], datetime]
    airflow: AirflowReader

    def settings(self) -> Settings:
        return self.runtime.settings()

    def factory(self) -> SessionFactory:
        return self.runtime.factory()


def pages_context(request: Request) -> PagesContext:
    return cast(PagesContext, request.app.state.pages)


def back_to(
    path: str,
    *,
    shop: str | None = None,
    notice: str | None = None,
    problem: str | None = None,
) -> RedirectResponse:
    """After a form: see the page again (303, a relative URL), with what happened, still
    showing the shop ``shop`` (None: every shop)."""
    shown = {"shop": shop} if shop is not None else {}
    shown.update({k: v for k, v in (("notice", notice), ("problem", problem)) if v})
    query = f"?{urlencode(shown)}" if shown else ""
    return RedirectResponse(f"{path}{query}", status_code=303)
