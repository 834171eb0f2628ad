"""Sending one message with bounded retries: what to do about each kind of provider error.

Transient errors (429, 5xx, refused connections) are retried up to ``attempts`` times with
exponential backoff, or after exactly the wait the provider asked for (X-RateLimit-Reset),
capped at ``max_wait``. Permanent errors and unknown outcomes are raised at once: retrying a
rejected request cannot help, and retrying a request that may have been acted on could send
the message twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from postpurchase.exceptions import TransientProviderError


def send_with_retries(
    send: Callable[[], str],
    *,
    attempts: int,
    max_wait: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Call ``send`` until it returns a message id; the last TransientProviderError if never."""
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except TransientProviderError as exc:
            if attempt == attempts:
                raise TransientProviderError(
                    f"{exc} (gave up after {attempts} attempts)", retry_after=exc.retry_after
                ) from None
            backoff = 0.5 * 2 ** (attempt - 1)
            sleep(min(max_wait, exc.retry_after if exc.retry_after is not None else backoff))
    raise AssertionError("unreachable: the loop returns or raises")
