"""
### Loyalty maintenance

Daily: applies points expiry as configured in `config/loyalty.yaml` (`expiry.mode`:
`after_earned` or `after_inactivity`, after `expiry.months`), then checks that no customer's
balance is negative. Expired points become `expiry` rows in the append-only ledger.

The run's note, the task's return value (XCom) and its log show how many points of how many
customers expired. Safe to re-run or clear: a second run the same day expires nothing more.

Rewards: redemptions left pending (platform unreachable, or a crash between the points debit
and the code) are completed or refunded, and unused codes past their end are expired (their
points given back when the reward says so).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from postpurchase.airflow_glue import DEFAULT_ARGS, START_DATE

CONFIG = Path(__file__).resolve().parents[1] / "config" / "loyalty.yaml"


@dag(
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postpurchase", "loyalty", "maintenance"],
    doc_md=__doc__,
)
def loyalty_maintenance() -> None:
    @task
    def apply_expiry() -> str:
        from postpurchase.airflow_glue import note_this_run
        from postpurchase.tasks.loyalty import apply_expiry

        return note_this_run(apply_expiry(CONFIG))

    @task
    def settle_rewards() -> str:
        from postpurchase.tasks.rewards import settle_rewards

        return settle_rewards(CONFIG)

    # Rewards first: points refunded by expired codes are then subject to points expiry.
    settle_rewards() >> apply_expiry()


loyalty_maintenance()
