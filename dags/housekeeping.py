"""
### Housekeeping

Daily clean-up of the postpurchase database. Rejected webhooks (bad signatures, malformed
bodies) are kept for ops to inspect, then pruned after
`POSTPURCHASE_REJECTED_WEBHOOK_RETENTION_DAYS`
days, and never more than `POSTPURCHASE_REJECTED_WEBHOOK_CAP` rows.

It also applies STOP and unsubscribe requests that the webhook app spooled to disk while the
database was down (where this worker sees `POSTPURCHASE_OPT_OUT_SPOOL_DIR`).

Privacy (see the README's "Privacy"): it fulfils the data subject requests waiting in the
inbox (Shopify's compliance webhooks and `POST /privacy/requests`: export, to the folder or
by email to the privacy contact; erase a customer; erase a shop), and drops personal fields
from processed inbox payloads and provider event details older than
`POSTPURCHASE_PAYLOAD_RETENTION_DAYS`.

The run's note and the task's return value say what was pruned and applied. Safe to re-run or
clear at any time: a second run prunes nothing new.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE


@dag(
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "maintenance"],
    doc_md=__doc__,
)
def housekeeping() -> None:
    @task
    def prune_rejected_webhooks() -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.housekeeping import tidy_database

        return note_this_run(tidy_database())

    prune_rejected_webhooks()


housekeeping()
