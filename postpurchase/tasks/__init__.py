"""The DAG task bodies: what each ``@task`` in ``dags/`` calls, one module per stage.

A DAG file wires tasks; each task body here reads settings (and campaigns) when it runs,
calls into the package and returns a short summary for the run's note. Each function is
named for the DAG task that calls it (``drain_inbox``, ``dispatch_chunk``, ``refresh_tiers``
...), so the Airflow UI and the code use one word for one step.
"""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "dispatch",
    "housekeeping",
    "loyalty",
    "outcomes",
    "processing",
    "rewards",
]
