"""Access logs without URL secrets.

Yotpo cannot sign its webhooks: the secret is the last segment of the URL it posts to
(``/webhooks/yotpo/{token}``). uvicorn's access log (``postpurchase serve``, and Airflow's API
server when the app is mounted there) writes every request's path, so the secret would sit in
every log line and every log shipper. The filter here replaces it before any handler sees it.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
# Paths whose segment after the prefix is a secret.
_SECRET_SEGMENT = re.compile(r"(/webhooks/yotpo/)[^/?#\s\"]+")


def redact(text: str) -> str:
    """``text`` with every URL secret replaced by "[redacted]"."""
    return _SECRET_SEGMENT.sub(r"\g<1>" + REDACTED, text)


class RedactUrlSecrets(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Put the filter on the access logger once (idempotent: apps may be built many times)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactUrlSecrets) for f in logger.filters):
        logger.addFilter(RedactUrlSecrets())
