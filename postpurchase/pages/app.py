"""The pages' FastAPI app: what the plugin mounts at ``/postpurchase/pages``.

Every route depends on ``auth.reader`` (or ``auth.actor`` for actions), so nothing is served
to someone Airflow has not logged in; a refusal is a small HTML page with 401 or 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from postpurchase.pages import campaigns, customer, health, kpis, whatif
from postpurchase.pages.airflow_runs import AirflowReader, read_airflow_state
from postpurchase.pages.auth import AirflowGatekeeper, Gatekeeper, Reader, Refused
from postpurchase.pages.context import PagesContext
from postpurchase.pages.rendering import refusal
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory
from postpurchase.webhooks.deps import Runtime

# The stylesheet, read once: served with the pages, never from a CDN.
_STYLESHEET = (files("postpurchase.pages") / "static" / "pages.css").read_text(encoding="utf-8")

# (name in the UI's navigation, route under the pages' top, the UI's /plugin/<url_route>)
PAGES = (
    ("Health", "health", "postpurchase-health"),
    ("Customers", "customers", "postpurchase-customers"),
    ("Campaigns", "campaigns", "postpurchase-campaigns"),
    ("KPIs", "kpis", "postpurchase-kpis"),
    ("What if", "whatif", "postpurchase-whatif"),
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_pages_app(
    settings: Settings | None = None,
    *,
    session_factory: SessionFactory | None = None,
    gatekeeper: Gatekeeper | None = None,
    airflow: AirflowReader = read_airflow_state,
    clock: Callable[[], datetime] = _utc_now,
) -> FastAPI:
    """The pages' app. Settings and the database are read at the first request unless given;
    the gatekeeper is Airflow's auth manager unless another is given."""
    app = FastAPI(title="postpurchase pages", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gatekeeper = gatekeeper or AirflowGatekeeper()
    app.state.pages = PagesContext(Runtime(settings, session_factory), clock, airflow)

    async def refused(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return refusal(exc.status, exc.reason)

    app.add_exception_handler(Refused, refused)

    @app.get("/")
    def top(user: Reader) -> RedirectResponse:
        return RedirectResponse("health", status_code=303)

    @app.get("/static/pages.css")
    def stylesheet() -> Response:
        # Public like any stylesheet: it holds nothing about the shop.
        return Response(
            _STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    for router in (health.router, customer.router, campaigns.router, kpis.router, whatif.router):
        app.include_router(router)
    return app
