"""
### Measure outcomes

Hourly: measures what every campaign achieves, from the messages of the last 90 days.

- per message: delivered, opened, clicked by a person (mail scanners' clicks counted apart),
  bounced, complained, unsubscribed;
- orders credited to the message last clicked within its attribution window (5 days after an
  email click, 1 day after an SMS click unless `config/campaigns.yaml` says otherwise), with
  revenue net of refunds;
- for campaigns with a `holdout`, each arm's conversion and the uplift with its 95% CI;
- the shop's KPIs (repeat purchase rate, CSAT, review rate, points outstanding);
- the deliverability guard: a campaign whose recent spam complaints pass 0.3% or bounces
  5% is paused (its messages wait). Resume it with `postpurchase campaigns resume ID`.

The run's note, the task's return value (XCom) and its log give the headline numbers, the
uplift verdicts and any pause. Safe to re-run or clear: every table is rebuilt set-based for
the period, so a second run gives the same numbers. `postpurchase report` reads the result.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE


@dag(
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "outcomes"],
    doc_md=__doc__,
)
def measure_outcomes() -> None:
    @task
    def refresh_outcomes() -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.outcomes import run_measure_outcomes

        return note_this_run(run_measure_outcomes())

    refresh_outcomes()


measure_outcomes()
