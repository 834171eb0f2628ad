"""What Airflow itself knows that the health page shows: each DAG's last run, and whether the
inbox asset wakes the processing DAG.

Read from Airflow's metadata database through Airflow's own models, as the API server's own
routes do (the pages run inside the API server, where that database is configured). Outside
an API server (a test, ``postpurchase serve``) nothing is known and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

# The asset the inbox's watcher fires (postpurchase.airflow_glue.triggers.INBOX_ASSET).
INBOX_ASSET_NAME = "postpurchase_inbox"
PROCESSING_DAG = "process_purchase_events"


@dataclass(frozen=True)
class DagRunSeen:
    dag_id: str
    is_paused: bool
    run_id: str | None
    state: str | None
    run_type: str | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class AirflowState:
    runs: list[DagRunSeen] = field(default_factory=list)
    last_asset_event_at: datetime | None = None  # the inbox watcher's newest event
    last_asset_run_at: datetime | None = None  # the newest processing run it started
    unavailable: str | None = None  # why nothing could be read


AirflowReader = Callable[[], AirflowState]


def read_airflow_state() -> AirflowState:
    """Every DAG's newest run and the inbox asset's newest event, from Airflow's database."""
    try:
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import func, select
    except ImportError as exc:  # pragma: no cover - Airflow is a dependency of the project
        return AirflowState(unavailable=f"Airflow is not importable: {exc}")
    try:
        with create_session() as session:
            dags = session.execute(
                select(DagModel.dag_id, DagModel.is_paused)
                .where(DagModel.is_stale.is_(False))
                .order_by(DagModel.dag_id)
            ).all()
            newest = (
                select(DagRun.dag_id, func.max(DagRun.id).label("id"))
                .group_by(DagRun.dag_id)
                .subquery()
            )
            runs = {
                run.dag_id: run
                for run in session.scalars(select(DagRun).join(newest, DagRun.id == newest.c.id))
            }
            seen = [_seen(dag_id, paused, runs.get(dag_id)) for dag_id, paused in dags]
            event_at = session.scalar(
                select(func.max(AssetEvent.timestamp))
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.name == INBOX_ASSET_NAME)
            )
            run_at = session.scalar(
                select(func.max(DagRun.run_after)).where(
                    DagRun.dag_id == PROCESSING_DAG, DagRun.run_type == "asset_triggered"
                )
            )
    except Exception as exc:  # noqa: BLE001 - no Airflow database here: the page says so
        return AirflowState(unavailable=f"Airflow's database is not readable here ({exc!s:.200})")
    return AirflowState(runs=seen, last_asset_event_at=event_at, last_asset_run_at=run_at)


def _seen(dag_id: str, paused: bool, run: object | None) -> DagRunSeen:
    if run is None:
        return DagRunSeen(dag_id, bool(paused), None, None, None, None, None)
    return DagRunSeen(
        dag_id=dag_id,
        is_paused=bool(paused),
        run_id=getattr(run, "run_id", None),
        state=str(getattr(run, "state", None) or "") or None,
        run_type=str(getattr(run, "run_type", None) or "") or None,
        started_at=getattr(run, "start_date", None),
        ended_at=getattr(run, "end_date", None),
    )
