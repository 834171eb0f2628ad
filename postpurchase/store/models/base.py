"""The declarative base every table of the engine shares (one metadata, one naming convention).

Money is ``Numeric`` with its ISO 4217 currency beside it; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from postpurchase.store.columns import NAMING_CONVENTION, Json, Money, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), Decimal: Money, dict[str, Any]: Json}
