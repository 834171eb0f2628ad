"""
### Process purchase events

Drains the postpurchase inbox: claims pending events in batches, upserts customers, orders
and items (stale updates ignored), plans touchpoints from `config/campaigns.yaml`, cancels
planned touchpoints that events made moot (refund, cancellation, return, review), and marks
each event processed, or failed with its reason after a few attempts. Then plans what no
event announces: deliveries assumed after the configured fallback, and win-backs.
Beside that, `look_up_products` asks Shopify's or WooCommerce's API (when credentials are
set) for products seen in orders but not yet described by a product webhook, a few per run
with short timeouts; a platform that fails is asked again in a later run.

**Drainers**: `drainers` decides how many `drain_inbox` task instances run side by side
(`POSTPURCHASE_DRAIN_WORKERS`, default 2, on PostgreSQL; one on SQLite); each claims its
own batches, so none waits for another.

**Schedule**: woken by the `postpurchase_inbox` asset (a watcher fires when the inbox's
highest id moves) and every minute regardless, because asset events can be stranded in
Airflow 3.3.2. One run at a time.

**Campaigns** are read when a task runs: an edit applies to the next run without a restart;
an invalid file fails the task with `file:line: message` and changes nothing.

**Counts** (events by type, planned, cancelled, failed, follow-ups, and why campaigns planned
nothing): the run's note (with the `postpurchase_airflow_api` connection, see the README),
each task's return value (XCom tab) and its log. A run that found nothing to do says
`idle: inbox empty` and ends green. Safe to re-run or clear: planning is idempotent.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, INBOX_ASSET, START_DATE


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("* * * * *", timezone="UTC"), assets=[INBOX_ASSET]
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "planning"],
    doc_md=__doc__,
)
def process_purchase_events() -> None:
    @task
    def drainers() -> list[int]:
        from postpurchase.tasks.processing import drainer_slots

        return drainer_slots()

    @task
    def drain_inbox(slot: int) -> dict[str, Any]:
        # ``slot`` only tells the mapped instances apart: each claims whatever is pending.
        from postpurchase.tasks.processing import drain_inbox

        return drain_inbox()

    @task
    def plan_followups(drained: list[dict[str, Any]]) -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.processing import plan_followups, processing_note

        return note_this_run(processing_note(drained, plan_followups()))

    @task
    def look_up_products() -> str:
        from postpurchase.tasks.processing import look_up_unknown_products

        return look_up_unknown_products()

    drained = drain_inbox.expand(slot=drainers())
    plan_followups(drained)
    # Its own branch: a slow or failing platform never holds back the follow-ups.
    drained >> look_up_products()


process_purchase_events()
