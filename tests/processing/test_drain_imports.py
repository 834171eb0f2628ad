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


_BATCH_WITHOUT_CODES = """
import json, sys
from postpurchase.processing.batch import Records, SourcedEvent
from postpurchase.processing.drain import mark_reward_codes_used
from postpurchase.stored_events import read_stored
event = read_stored(open(sys.argv[1], "rb").read())
assert mark_reward_codes_used(None, Records(), [SourcedEvent(1, "shopify", event)]) == 0
print(json.dumps(sorted(m for m in ("aiohttp", "httpx", "redis") if m in sys.modules)))
"""


def test_a_batch_whose_orders_carry_no_discount_code_loads_no_platform_client(tmp_path):
    payload = tmp_path / "event.json"
    payload.write_text(
        json.dumps(
            {
                "type": "order.paid",
                "occurred_at": "2026-03-02T09:02:00Z",
                "order": {"external_id": "5001", "currency": "USD", "total": "49.00"},
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-c", _BATCH_WITHOUT_CODES, str(payload)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
