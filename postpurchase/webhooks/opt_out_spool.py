"""Opt-outs received while the database is away: kept in files, applied when it is back.

Twilio does not retry an inbound message and a mail client does not retry a one-click
unsubscribe, so answering 503 to a STOP or an unsubscribe would drop it for good. Instead the
request is written to a file in the spool directory (``POSTPURCHASE_OPT_OUT_SPOOL_DIR``, by
default ``opt-out-spool`` under the var dir), flushed to disk before the customer is answered,
and applied later: before the next opt-out request is handled (so a START never overtakes a
spooled STOP), by a background retry in the process that spooled it, and by the housekeeping
DAG. Applying is idempotent (a suppression is one row per address), so a file applied twice
by two processes changes nothing the second time; a file is deleted only once applied.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from postpurchase import feedback
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory, transaction

log = logging.getLogger(__name__)

SMS_STOP = "sms_stop"
EMAIL_UNSUBSCRIBE = "email_unsubscribe"
_RETRY_SECONDS = 30.0


def spool_dir(settings: Settings) -> Path:
    return settings.opt_out_spool_dir or settings.var_dir / "opt-out-spool"


def keep(settings: Settings, kind: str, *, at: datetime, **fields: Any) -> Path:
    """Write one opt-out durably (file and directory entry fsync'd); returns its path.

    Raises OSError if it cannot be written: the caller must then not claim success.
    """
    directory = spool_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    record = {"kind": kind, "at": at.isoformat(), **fields}
    # Time first, so a sorted listing replays in arrival order (STOP before a later START).
    name = f"{at.strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(6)}"
    partial = directory / f".{name}.tmp"
    with open(partial, "x", encoding="utf-8") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / f"{name}.json"
    os.replace(partial, final)  # a reader sees a whole file or none
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
    log.warning("database unavailable: kept %s in %s until it is back", kind, final)
    return final


def pending(settings: Settings) -> list[Path]:
    directory = spool_dir(settings)
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.json"))


def _apply(session: Any, record: dict[str, Any]) -> None:
    at = datetime.fromisoformat(record["at"])
    if record["kind"] == SMS_STOP:
        feedback.opt_out_sms(
            session,
            phone=record["phone"],
            source=record["source"],
            now=at,
            reference=record.get("reference"),
        )
    elif record["kind"] == EMAIL_UNSUBSCRIBE:
        done = feedback.unsubscribe_email(
            session,
            customer_id=int(record["customer_id"]),
            source=record["source"],
            now=at,
            reference=record.get("reference"),
        )
        if not done:
            log.warning("spooled unsubscribe for unknown customer %s", record["customer_id"])
    else:
        raise ValueError(f"unknown spooled opt-out kind {record['kind']!r}")


def replay(settings: Settings, factory: SessionFactory) -> int:
    """Apply spooled opt-outs oldest first; returns how many were applied.

    Stops at the first database error (still away: the rest wait for the next try). A file
    that cannot be read as an opt-out is moved aside (``.bad``) for ops, never deleted.
    """
    applied = 0
    for path in pending(settings):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # another process applied it meanwhile
        except (OSError, ValueError):
            log.error("unreadable spooled opt-out %s: moved aside", path)
            path.replace(path.with_suffix(".bad"))
            continue
        try:
            with transaction(factory) as session:
                _apply(session, record)
        except SQLAlchemyError as exc:
            log.info("spooled opt-outs wait: database still unavailable (%s)", type(exc).__name__)
            break
        except (KeyError, TypeError, ValueError):
            log.error("malformed spooled opt-out %s: moved aside", path)
            path.replace(path.with_suffix(".bad"))
            continue
        path.unlink(missing_ok=True)
        applied += 1
    if applied:
        log.info("applied %d spooled opt-out(s)", applied)
    return applied


class Replayer:
    """Retries the spool in the background while it holds files, one thread per app (the
    web app's ``Runtime`` holds it, with the app's settings and database)."""

    def __init__(
        self, settings: Callable[[], Settings], factory: Callable[[], SessionFactory]
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def replay_now(self) -> int:
        """Apply what is spooled, if anything (cheap when the spool is empty)."""
        settings = self._settings()
        if not pending(settings):
            return 0
        with self._lock:  # one replay at a time in this process keeps arrival order
            return replay(settings, self._factory())

    def start_retrying(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="opt-out-spool", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(_RETRY_SECONDS):
            try:
                self.replay_now()
            except Exception:  # a thread that dies silently would strand the spool
                log.exception("replaying the opt-out spool failed")
            if not pending(self._settings()):
                return
