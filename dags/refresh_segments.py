"""
### Refresh segments

Recomputes every customer's recency, frequency and monetary value over the trailing window
(`tiers.window_months` in `config/loyalty.yaml`), their RFM quintiles and their tier, in a few
set-based SQL statements. Each tier change is recorded in `customer_tier_history` and emits one
`tier.changed` event into the inbox, which the campaign planner turns into messages such as
`vip_welcome`. Downgrades wait `tiers.grace_days` so customers at a threshold do not flap.

Schedule: `tiers.refresh_cron` from `config/loyalty.yaml`, read when the file is parsed (a
small YAML file, no database). A missing or invalid file falls back to 02:30 UTC daily, and the
task then fails with the file:line error, so a broken config is seen, not hidden.

The run's note (with the `postpurchase_airflow_api` connection, see the README), the task's
return value (XCom) and its log show tier sizes and moves. Safe to re-run or clear: a
second refresh with the same data changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE
from postpurchase.loyalty.config import loyalty_config_path, refresh_cron

CONFIG = Path(__file__).resolve().parents[1] / "config" / "loyalty.yaml"


@dag(
    schedule=refresh_cron(loyalty_config_path(CONFIG)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "loyalty"],
    doc_md=__doc__,
)
def refresh_segments() -> None:
    @task
    def refresh_tiers() -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.loyalty import refresh_tiers

        return note_this_run(refresh_tiers(CONFIG))

    refresh_tiers()


refresh_segments()
