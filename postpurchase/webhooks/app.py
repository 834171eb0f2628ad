"""The FastAPI app, served inside Airflow's API server at ``/postpurchase`` or on its own.

Every intake route does the same: verify, normalise, INSERT into the inbox under a unique
dedupe key, commit, answer. Nothing here calls Airflow: the ``process_purchase_events`` DAG
notices new inbox rows itself (a triggerer watching the inbox's newest id, backed by a
one-minute schedule), so an Airflow that is down or slow never delays or fails a webhook.

Answers: 202 accepted (or ignored, for topics recorded but not acted on), 200 duplicate,
401 signature, 400 malformed, 413 too large, 415 not JSON, 422 invalid (with field paths),
503 when the database or the configuration is unavailable (the sender retries later).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.exceptions import ConfigError
from postpurchase.inbox import IGNORED_EVENT_TYPE, InboxEntry
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import SessionFactory
from postpurchase.webhooks import (
    access_log,
    clicks,
    link_pages,
    links,
    openapi,
    providers,
    review_apps,
    reviews,
    surveys,
)
from postpurchase.webhooks.deps import Runtime
from postpurchase.webhooks.intake import (
    Ping,
    generic_entry,
    privacy_entry,
    receive_body,
    shopify_entry,
    woocommerce_entry,
)
from postpurchase.webhooks.rejections import Rejection, RejectionCounter

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EntryParser = Callable[[Settings, Mapping[str, str], bytes, datetime], InboxEntry | Ping]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# The setting a route cannot verify anything without, when it is missing. WooCommerce is left
# out: its creation ping comes unsigned and must be answered before a secret is set.
_UNCONFIGURED: dict[str, Callable[[Settings], str | None]] = {
    "/webhooks/shopify": lambda s: (
        None
        if s.shopify_webhook_secret or s.shopify_webhook_secrets
        else "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET"
    ),
    "/webhooks/events": lambda s: None if s.webhook_secret else "POSTPURCHASE_WEBHOOK_SECRET",
    "/privacy/requests": lambda s: None if s.webhook_secret else "POSTPURCHASE_WEBHOOK_SECRET",
}


def _docs_wanted(settings: Settings | None) -> bool:
    if settings is not None:
        return settings.api_docs
    try:
        return load_settings().api_docs
    except ConfigError:
        return False  # the first request reports the configuration; docs stay off


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Served on its own: apply opt-outs spooled while the database was away, at start;
    write the rejection counts still in memory at the end.

    (Mounted in Airflow, a sub-app gets no lifespan: the next opt-out request and the
    housekeeping DAG apply them.)
    """
    replayer = app.state.runtime.replayer
    try:
        await run_in_threadpool(replayer.replay_now)
    except Exception:  # noqa: BLE001 - never keep the app from starting over the spool
        log.exception("could not replay spooled opt-outs at start")
    yield
    replayer.stop()
    await run_in_threadpool(app.state.rejections.flush)  # counts still held in memory


def _unavailable(what: str) -> JSONResponse:
    return JSONResponse(
        {"status": "unavailable", "reason": what}, status_code=503, headers={"Retry-After": "30"}
    )


class _StoredAnswer(Response):
    """The 202 of nearly every webhook, ``{"status":…,"event_id":…}``: the bytes and headers
    JSONResponse would make, written directly. Serialising a two-member dict and working out
    the headers cost several microseconds a request, a measurable share of intake's own."""

    media_type = "application/json"

    def __init__(self, status: str, event_id: int) -> None:
        self.status_code = 202
        self.background = None
        self.body = b'{"status":"%s","event_id":%d}' % (status.encode(), event_id)
        self.raw_headers = [
            (b"content-length", b"%d" % len(self.body)),
            (b"content-type", b"application/json"),
        ]


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers as a plain dict, for a parser's dozen look-ups: Starlette's
    ``Headers`` encodes the name and scans (and decodes) the raw list at each. Names arrive
    lower-cased (ASGI); of a repeated name the first wins, as with ``Headers.get``."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


class _IntakeRoute:
    """An intake route as a bare ASGI app: ``answer`` gets the scope and the receive channel
    and returns the response. No ``Request`` is made, and no per-route exception handling
    wraps it (intake answers its own errors)."""

    def __init__(
        self,
        answer: Callable[[Scope, Receive, str, EntryParser], Awaitable[Response]],
        route: str,
        parse: EntryParser,
    ) -> None:
        self._answer = answer
        self._route = route
        self._parse = parse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope, receive, self._route, self._parse)
        await response(scope, receive, send)


class _WebhookApp(FastAPI):
    """FastAPI, with a POST to an intake route handed to it before the middleware and router.

    On its way to an intake route a webhook passed five layers that route does not use
    (exception middleware, FastAPI's exit stack, the router's scan of the routes, the
    route's own exception handling and ``Request``). Without them a webhook's way through the
    app (parsing and storing left out) costs 5 us instead of 12. Only the outermost is kept,
    ``ServerErrorMiddleware``, so a bug is still answered 500 and logged by the server as it
    is for every other route. The routes stay registered too: any other method, and any
    other path, takes the full stack (405, redirects, 404).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._intake_posts: dict[str, ASGIApp] = {}

    def add_intake_route(self, path: str, endpoint: ASGIApp) -> None:
        self.router.routes.append(Route(path, endpoint, methods=["POST"]))
        self._intake_posts[path] = ServerErrorMiddleware(endpoint, debug=self.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            # Matched as the router would: the path below the root path of a mount (Airflow's).
            endpoint = self._intake_posts.get(get_route_path(scope))
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: SessionFactory | None = None,
    clock: Clock = _utc_now,
) -> FastAPI:
    """Build the app. Settings and the database are read at the first request, unless given."""
    docs = _docs_wanted(settings)
    access_log.install()  # Yotpo's URL secret never reaches the access log
    app = _WebhookApp(
        title="postpurchase webhooks",
        version="1",
        description=__doc__,
        # Public by default (nothing in front of the app, nor Airflow's mount, guards them):
        # a map of every route for anyone. POSTPURCHASE_API_DOCS=true turns them on.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan,
    )
    runtime = Runtime(settings, session_factory)
    app.state.runtime = runtime  # every route's settings and database (see deps)
    rejections = RejectionCounter()
    app.state.rejections = rejections  # provider routes count their refusals here too

    _add_intake(app, runtime, rejections, clock)
    _add_storefront(app, runtime)
    # Provider feedback (SendGrid events, Twilio status and inbound, unsubscribe, survey).
    app.include_router(providers.router)
    app.include_router(links.router)
    app.include_router(reviews.router)
    app.include_router(surveys.router)
    app.include_router(review_apps.router)
    app.add_exception_handler(
        link_pages.Misconfigured, lambda _r, _e: link_pages.misconfigured_page()
    )

    _add_openapi(app)
    _add_outcomes_and_rewards(app)
    _add_health(app, runtime)
    return app


def _add_intake(
    app: _WebhookApp, runtime: Runtime, rejections: RejectionCounter, clock: Clock
) -> None:
    """The purchase webhook routes: verify, normalise, store in the inbox, answer."""

    async def intake(scope: Scope, receive: Receive, route: str, parse: EntryParser) -> Response:
        try:
            current = runtime.settings()
            factory = runtime.factory()
        except ConfigError as exc:
            log.error("webhook intake is misconfigured: %s", exc)
            return _unavailable("the server's configuration is invalid")
        unconfigured = _UNCONFIGURED.get(route)
        missing = unconfigured(current) if unconfigured is not None else None
        if missing is not None:  # before reading: an unconfigured route holds no body at all
            return _unavailable(f"{route} is not configured ({missing})")
        headers = _header_dict(scope["headers"])
        body = b""
        try:
            limit = current.webhook_max_body_bytes
            body = await receive_body(receive, headers.get("content-length"), limit)
            entry = parse(current, headers, body, clock())
        except Rejection as rejection:
            log.info("rejected %s with %d: %s", route, rejection.status_code, rejection.reason)
            await run_in_threadpool(
                rejections.record,
                factory,
                route=route,
                rejection=rejection,
                headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]],
                body=body,
                cap=current.rejected_webhook_cap,
            )
            return JSONResponse(rejection.answer(), status_code=rejection.status_code)
        if isinstance(entry, Ping):
            return JSONResponse({"status": "ping"}, status_code=200)
        try:
            event_id = await runtime.committer().add(entry)
        except SQLAlchemyError as exc:
            log.error("could not store a webhook from %s: %s", route, type(exc).__name__)
            return _unavailable("the database is unavailable")
        if event_id is None:
            return JSONResponse({"status": "duplicate"}, status_code=200)
        status = "ignored" if entry.event_type == IGNORED_EVENT_TYPE else "accepted"
        if not entry.notes:
            return _StoredAnswer(status, event_id)
        log.info("%s %s event %d: %s", route, status, event_id, "; ".join(entry.notes))
        answer = {"status": status, "event_id": event_id, "notes": list(entry.notes)}
        return JSONResponse(answer, status_code=202)

    # Plain ASGI routes (see _WebhookApp): they read the raw body themselves, and skip
    # FastAPI's per-request dependency solving, a noticeable share of the cost of a webhook.
    parsers: dict[str, EntryParser] = {
        "/webhooks/shopify": shopify_entry,
        "/webhooks/woocommerce": woocommerce_entry,
        "/webhooks/events": generic_entry,
        # Data subject requests from platforms without Shopify's compliance webhooks.
        "/privacy/requests": privacy_entry,
    }
    for route, parse in parsers.items():
        app.add_intake_route(route, _IntakeRoute(intake, route, parse))


def _add_openapi(app: FastAPI) -> None:
    """The schema: the intake routes (plain Starlette routes) described by hand, then the rest."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document["paths"] = {**openapi.INTAKE_PATHS, **document["paths"]}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


def _add_storefront(app: FastAPI, runtime: Runtime) -> None:
    """The storefront API, right after intake: a request is matched against the routes in
    order, and a storefront's redemptions come many at once (19 routes fewer to try: about
    1.5% of a redemption's CPU). No route before it matches a ``/storefront/`` path."""
    from postpurchase.rewards import storefront
    from postpurchase.rewards.web import RewardsRuntime

    # Mounted in Airflow's API server, the platform's credentials may be a connection.
    app.state.rewards = RewardsRuntime(
        runtime.settings, runtime.factory, connection=connection_fields
    )
    app.include_router(storefront.router)


def _add_outcomes_and_rewards(app: FastAPI) -> None:
    # Click links in messages (outcomes): count, then redirect.
    app.include_router(clicks.router)
    # The hosted rewards page (the storefront API is added with intake, see _add_storefront).
    from postpurchase.rewards import page as rewards_page

    app.include_router(rewards_page.router)


def _add_health(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/webhooks/health")
    async def health() -> JSONResponse:
        """Liveness plus database reachability: 200 when both are fine, 503 otherwise."""
        try:
            factory = runtime.factory()
            await run_in_threadpool(_ping_database, factory)
        except (ConfigError, SQLAlchemyError) as exc:
            return JSONResponse(
                {"status": "unavailable", "database": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})


def _ping_database(factory: SessionFactory) -> None:
    with factory() as session:
        session.execute(text("SELECT 1"))
