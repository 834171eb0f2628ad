"""Genuine platform payloads from tests/fixtures/genuine (each with its ``.source.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GENUINE = Path(__file__).resolve().parent / "fixtures" / "genuine"


def genuine(name: str) -> Any:
    """The payload at ``GENUINE / name``, parsed (a fresh copy each call)."""
    return json.loads((GENUINE / name).read_text(encoding="utf-8"))
