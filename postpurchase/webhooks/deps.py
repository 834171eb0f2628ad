"""What every route of the webhook app gets the same way: the app's settings and database.

``create_app`` builds one ``Runtime`` and keeps it on ``app.state``; routes declare
``runtime: RuntimeDep`` (a FastAPI dependency, as in the full-stack FastAPI template's
``deps.py``) and read ``runtime.settings()`` and ``runtime.factory()`` from it, so no route
loads settings or opens the store per request, and a test builds the app with its own
settings and session factory. The intake routes are plain Starlette routes (no dependency
solving on the hot path) and use the same ``Runtime`` directly.
"""

from __future__ import annotations

import threading
from typing import Annotated, cast

from fastapi import Depends, Request

from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import SessionFactory, engine_of, open_store
from postpurchase.webhooks.group_commit import GroupCommitter
from postpurchase.webhooks.opt_out_spool import Replayer


class Runtime:
    """Settings and the database, loaded on first use (the app is built at plugin import),
    then the same for every request."""

    def __init__(self, settings: Settings | None, factory: SessionFactory | None) -> None:
        self._settings = settings
        self._factory = factory
        self._committer: GroupCommitter | None = None
        self._lock = threading.Lock()
        # Opt-outs spooled while the database was away, applied with this app's settings.
        self.replayer = Replayer(self.settings, self.factory)

    def settings(self) -> Settings:
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._settings = load_settings()
        return self._settings

    def factory(self) -> SessionFactory:
        if self._factory is None:
            self._factory = open_store(self.settings())
        return self._factory

    def committer(self) -> GroupCommitter:
        if self._committer is None:
            self._committer = GroupCommitter(engine_of(self.factory()))
        return self._committer


def app_runtime(request: Request) -> Runtime:
    """The ``Runtime`` that ``create_app`` set up for this app."""
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(app_runtime)]
