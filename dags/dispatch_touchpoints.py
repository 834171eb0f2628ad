"""
### Dispatch touchpoints

Every minute: claims due touchpoints in chunks (`POSTPURCHASE_DISPATCH_CHUNK_SIZE` each, at most
`POSTPURCHASE_DISPATCH_MAX_CHUNKS` per run) and sends each chunk in its own mapped task, so
workers share the load. Each touchpoint is gated at send time (cancel rules against the order's
current state, consent, suppressions, SMS quiet hours, smart sending), rendered, sent through
the configured channel (outbox files by default, SendGrid, Twilio) and recorded as `sent`,
`skipped` (with the reason), deferred, `failed` (with the provider's message) or `unknown`.

The run's counts per outcome and its skip reasons (per campaign and reason) are its note (with
the `postpurchase_airflow_api` connection, see the README), the `summarize` task's return
value and the tasks' logs. A run with nothing due says `idle: nothing due` and ends green.

Safe to re-run or clear: a touchpoint is sent at most once; one whose send may have started
before a crash is recorded `unknown`, never sent again blind.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE


@dag(
    schedule="* * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "messages"],
    doc_md=__doc__,
)
def dispatch_touchpoints() -> None:
    @task
    def claim(run_id: str | None = None) -> list[dict[str, Any]]:
        from postpurchase.tasks.dispatch import claim_for_run

        return claim_for_run(f"dispatch:{run_id}")

    @task
    def send(chunk: dict[str, Any]) -> dict[str, Any]:
        from postpurchase.tasks.dispatch import dispatch_chunk

        return dispatch_chunk(chunk)

    @task
    def summarize(results: list[dict[str, Any]]) -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.dispatch import dispatch_summary

        return note_this_run(dispatch_summary(results))

    summarize(send.expand(chunk=claim()))


dispatch_touchpoints()
