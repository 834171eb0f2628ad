"""What a drainer loads: the drain and its rewards part stay clear of the rewards platforms'
HTTP client and the channels' rate limiter, whose loading cost each drainer about 0.3 s of
CPU on its first batch."""

import json
import subprocess
import sys

_LOADED = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in ("aiohttp", "httpx", "redis") if m in sys.modules)))
"""


def _loaded(*modules: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_drain_and_its_rewards_part_load_no_platform_client():
    assert _loaded("postpurchase.processing.drain", "postpurchase.rewards.batches") == []


def test_the_follow_up_step_does():
    assert _loaded("postpurchase.rewards.followups") == ["aiohttp", "redis"]


_CODES_LOOKED_UP = """
import json, sys
from datetime import UTC, datetime
from postpurchase.processing.drain import process_batch
from postpurchase.rewards.used_codes import mark_used
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
store = session_factory(make_engine(parse_database_url(sys.argv[1])))
with transaction(store) as session:  # the genuine Shopify order's code, none of ours
    assert mark_used(session, [(1, ["TENOFF"], datetime.now(UTC))]) == 0
print(json.dumps(sorted(m for m in ("aiohttp", "httpx", "redis") if m in sys.modules)))
"""


def test_a_batch_whose_orders_carry_discount_codes_loads_no_platform_client(db_url):
    """Nearly every batch has an order with a code: looking them up among the redemptions
    used to bring in the platforms' clients, about 0.2 s of CPU in each drain task's process."""
    result = subprocess.run(
        [sys.executable, "-c", _CODES_LOOKED_UP, db_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
