"""Reading a code pool from CSV, as shops export them (a header is optional)."""

from __future__ import annotations

import csv
from pathlib import Path

from postpurchase.exceptions import InvalidInput


def read_codes(path: Path) -> list[str]:
    """The codes in ``path``: the ``code`` column when a header names one, else the first."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: cannot read the codes: {exc}") from None
    if not rows:
        raise InvalidInput(f"{path}: no codes in the file")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("code") if "code" in header else 0
    body = rows[1:] if "code" in header else rows
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]
