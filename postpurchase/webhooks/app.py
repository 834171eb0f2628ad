"""The FastAPI app, served inside Airflow's API server at ``/postpurchase`` or on its own."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from postpurchase.settings import load_settings
from postpurchase.store.database import open_store
from postpurchase.webhooks import providers


def create_app() -> FastAPI:
    """Build the app. Nothing is connected until the first request needs it."""
    app = FastAPI(title="postpurchase webhooks", version="1")
    app.include_router(providers.router)

    @app.get("/webhooks/health")
    def health() -> JSONResponse:
        """Liveness plus database reachability: 200 when both are fine, 503 otherwise."""
        try:
            with open_store(load_settings())() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any failure here means "not healthy", with the reason
            return JSONResponse(
                {"status": "unavailable", "database": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    return app
