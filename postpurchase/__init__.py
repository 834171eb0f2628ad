"""postpurchase: event-driven post-purchase automation on Apache Airflow.

Purchase webhooks land in an inbox table; Airflow DAGs drain it in batches, plan touchpoints
(delivery check-ins, review requests, loyalty messages) into a table of due work, and dispatch
them by email and SMS. This module stays import-light: DAG files import the package at parse time.
"""

__version__ = "0.1.0"
