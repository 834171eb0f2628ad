"""The embedded demo behind ``make run``: a realistic sample feed and its replay over HTTP."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "answers",
    "feed",
    "feedback_summary",
    "local_airflow",
    "outcomes",
    "processes",
    "replay",
    "shop_payloads",
    "summary",
]
