"""How fast this machine's cores ran around a section: a fixed workload's CPU time.

The machines benchmarks run on differ (the same drain did 7,179 events/s on one and 11,311 on
another), and one machine's speed moves within the hour with its neighbours' load. Each
section gives this workload's time read before its run and after it, so that its absolute
figures can be set against another section's or another day's; the ratios to a ceiling
measured in the same run need no such help.

The workload is the standard library's JSON encoding and decoding of a document built here:
nothing of the project's code or files, so its time moves with the machine and the Python
version alone. It is timed on this thread's CPU clock, the best of a few repeats.
"""

from __future__ import annotations

import json
import time

_ROUNDS = 400
_REPEATS = 5
# An order-sized document: the same bytes on every machine and every day.
_DOCUMENT = json.dumps(
    {
        "id": 820982911946154508,
        "email": "jon@example.com",
        "currency": "USD",
        "line_items": [
            {
                "id": 466157049 + n,
                "title": f"IPod Nano - {n}gb",
                "price": f"{199 + n}.00",
                "quantity": n % 3 + 1,
                "properties": [{"name": "colour", "value": "pink"}],
            }
            for n in range(12)
        ],
        "tags": ["vip", "wholesale", "returning"],
    }
).encode()


def probe_ms() -> float:
    """CPU milliseconds of one pass of the fixed workload (the best of ``_REPEATS``)."""
    best = float("inf")
    for _ in range(_REPEATS):
        started = time.thread_time()
        for _ in range(_ROUNDS):
            json.dumps(json.loads(_DOCUMENT), sort_keys=True)
        best = min(best, time.thread_time() - started)
    return best * 1000
