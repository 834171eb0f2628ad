"""The DAG task bodies: what each ``@task`` in ``dags/`` calls, one module per stage.

A DAG file wires tasks; each task body here takes optional ``settings`` (read from the
environment when None, as in a task) and reads campaigns when it runs, calls into the
package and returns what the next task or the run's note needs. Names say what the step does,
verb first (``drain_inbox``, ``claim_for_run``, ``dispatch_chunk``, ``refresh_tiers``,
``apply_expiry``, ``settle_rewards``, ``tidy_database``), several of them the DAG task's own id.
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
