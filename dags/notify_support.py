"""
### Notify support

Every minute, tells the shop's support team about each negative answer (NPS 0-6, a delivery
rating of 1-2, a review of 1-2 stars) with the customer, the order and their words: an email
to `POSTPURCHASE_SUPPORT_EMAIL` through the configured email channel and/or a signed JSON
POST to `POSTPURCHASE_SUPPORT_WEBHOOK_URL`.

Each notification is a row with a unique key per answer and way of telling: a retried or
cleared task re-sends nothing already sent; a failed send is retried with a growing delay,
then kept as `failed` with its error. The task's return value says what was sent.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE


@dag(
    schedule=timedelta(minutes=1),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "feedback"],
    doc_md=__doc__,
)
def notify_support() -> None:
    @task
    def send_support_notifications() -> str:
        from postpurchase.surveys.notify import notify_support

        return notify_support()

    send_support_notifications()


notify_support()
