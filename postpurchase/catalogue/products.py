"""The product catalogue: storing product events, and reading what a batch's lines need.

Rules, as for orders (``processing.records``), so that product webhooks may arrive late,
twice or out of order:

- A product event's version is the product's ``updated_at`` (else the event's time). An
  event older than the stored version changes nothing.
- ``product.updated`` replaces the fields it carries and clears ``deleted_at`` (a WooCommerce
  product restored from the bin); ``product.deleted`` only sets ``deleted_at``: the row
  stays, so past orders keep their product's type, image and link.

Products referenced by order lines but never described get a bare row (``note_products``),
which marks them for a look-up through the platform's API (``catalogue.lookup``); until then
they are unknown, and conditions on their type, tags or collections do not match.

Work is set-based: one INSERT of missing rows, one read, one UPDATE per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from msgspec import UNSET
from sqlalchemy import Select, Table, bindparam, select, update
from sqlalchemy.orm import Session

from postpurchase.events import EventType
from postpurchase.store.driver_statements import fetch_all
from postpurchase.store.membership import (
    array_literal,
    key_parameters,
    keys_among,
    keys_among_parameter,
)
from postpurchase.store.models import Product
from postpurchase.store.statements import insert_ignoring_conflicts
from postpurchase.stored_events import StoredEvent, StoredProduct

Key = tuple[str, str, str]  # (source, shop, platform product id)

_FIELDS = (
    "title",
    "product_type",
    "vendor",
    "handle",
    "tags",
    "collections",
    "image_url",
    "url",
)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the catalogue knows of one product; ``known`` is False until it is described."""

    title: str | None
    product_type: str | None
    vendor: str | None
    handle: str | None
    tags: tuple[str, ...]
    collections: tuple[str, ...]
    image_url: str | None
    url: str | None
    deleted: bool
    known: bool


def _version(event: StoredEvent) -> datetime:
    assert event.product is not None
    return event.product.updated_at or event.occurred_at


def bare_row(key: Key) -> dict[str, Any]:
    """The row of a product not described yet (the JSON lists must be given: a bulk insert
    does not apply Python-side defaults)."""
    return {
        "source": key[0],
        "shop": key[1],
        "external_id": key[2],
        "tags": [],
        "collections": [],
    }


def _key_columns(table: Any) -> tuple[Any, Any, Any]:
    return (table.c.source, table.c.shop, table.c.external_id)


def store_product_events(session: Session, items: Sequence[tuple[str, str, StoredEvent]]) -> int:
    """Apply ``(source, shop, event)`` triples of ``product.*`` events, in the caller's
    transaction.

    Returns how many changed the catalogue (stale ones do not).
    """
    events = [(source, shop, e) for source, shop, e in items if e.product is not None]
    if not events:
        return 0
    keys = sorted({(src, shop, e.product.external_id) for src, shop, e in events if e.product})
    note_products(session, keys)
    table = Product.__table__
    query = select(*_key_columns(table), table.c.id, table.c.source_updated_at)
    query = query.where(keys_among(session, _key_columns(table), keys))
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(table.c.id).with_for_update()  # as orders: one lock order
    stored = {
        (row.source, row.shop, row.external_id): (row.id, row.source_updated_at)
        for row in session.execute(query)
    }
    changes: dict[int, dict[str, Any]] = {}
    versions = {key: version for key, (_, version) in stored.items()}
    for source, shop, event in sorted(events, key=lambda triple: _version(triple[2])):
        product = event.product
        assert product is not None
        key = (source, shop, product.external_id)
        version = _version(event)
        if versions[key] is not None and version < versions[key]:
            continue  # an older description than the one stored
        versions[key] = version
        row_id = stored[key][0]
        change = changes.setdefault(row_id, {})
        change.update(_changed_fields(event, product, version))
    if not changes:
        return 0
    _write(session, changes)
    return len(changes)


def _changed_fields(
    event: StoredEvent, product: StoredProduct, version: datetime
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "source_updated_at": version,
        "lookup_after": None,
        "lookup_error": None,
    }
    if event.type is EventType.PRODUCT_DELETED:
        fields["deleted_at"] = version
        return fields
    fields["deleted_at"] = None
    for name in _FIELDS:
        value = getattr(product, name)
        if value is not UNSET:  # given, if only as null (``postpurchase.stored_events``)
            fields[name] = value
    return fields


def _write(session: Session, changes: dict[int, dict[str, Any]]) -> None:
    table = cast(Table, Product.__table__)
    # One UPDATE per set of columns (most batches have one or two: updates and deletions).
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, fields in changes.items():
        columns = tuple(sorted(fields))
        by_columns.setdefault(columns, []).append({"_id": row_id, **fields})
    for columns, params in by_columns.items():
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns}),
            params,
        )


def note_products(session: Session, keys: Iterable[Key]) -> int:
    """Give each product of ``keys`` that the catalogue lacks a bare row, due for a look-up.

    Rows already there are left as they are. The ones present are read first, so that a
    batch naming known products (nearly every batch) writes nothing. Returns how many rows
    were added.
    """
    wanted = sorted({key for key in keys if key[2]})
    if not wanted:
        return 0
    present = {tuple(row) for row in _read(session, _KEY, wanted)}
    missing = [key for key in wanted if key not in present]
    return insert_ignoring_conflicts(session, Product, [bare_row(key) for key in missing])


def catalogue_entries(session: Session, keys: Iterable[Key]) -> dict[Key, CatalogueEntry]:
    """The catalogue's entries for ``keys`` (one query); a product with no row is absent."""
    wanted = sorted({key for key in keys if key[2]})
    if not wanted:
        return {}
    return {
        (source, shop, external_id): CatalogueEntry(
            title=title,
            product_type=product_type,
            vendor=vendor,
            handle=handle,
            tags=tuple(tags or ()),
            collections=tuple(collections or ()),
            image_url=image_url,
            url=url,
            deleted=deleted_at is not None,
            known=source_updated_at is not None,
        )
        for (
            source,
            shop,
            external_id,
            source_updated_at,
            deleted_at,
            title,
            product_type,
            vendor,
            handle,
            tags,
            collections,
            image_url,
            url,
        ) in _read(session, _ENTRY, wanted)
    }


# The columns of the catalogue's reads, a key first: what ``note_products`` needs of a row,
# and what ``catalogue_entries`` makes an entry of, in the order it unpacks them.
_KEY = ("source", "shop", "external_id")
_ENTRY = (*_KEY, "source_updated_at", "deleted_at", *_FIELDS)


def _read(session: Session, names: tuple[str, ...], keys: list[Key]) -> Iterable[Sequence[Any]]:
    """The ``names`` columns of the catalogue's rows of ``keys`` (sorted, each once), as
    tuples. Every batch reads its products twice: on PostgreSQL the statement is built once
    and run by psycopg (``driver_statements``); built again for each batch and run through
    SQLAlchemy, the two reads cost a drainer more CPU than the rows they read."""
    dialect = session.get_bind().dialect.name
    query = _read_query(dialect, names)
    params = key_parameters(dialect, "keys", keys)
    if dialect != "postgresql":
        return session.execute(query, params)
    arrays = {name: array_literal(values) for name, values in params.items()}
    return fetch_all(session.connection(), query, arrays)


@cache
def _read_query(dialect: str, names: tuple[str, ...]) -> Select[Any]:
    table = Product.__table__
    return select(*(table.c[name] for name in names)).where(
        keys_among_parameter(dialect, _key_columns(table), "keys")
    )


def with_catalogue(
    lines: Iterable[dict[str, Any]], source: str, shop: str, entries: dict[Key, CatalogueEntry]
) -> list[dict[str, Any]]:
    """Order lines (dicts with ``product_id``) completed from the catalogue: ``product_type``,
    ``tags``, ``collections``, ``image_url`` and ``product_url``.

    The catalogue's values come first; a line's own (a generic event may send a type or an
    image) fill what the catalogue does not know.
    """
    completed = []
    for line in lines:
        entry = entries.get((source, shop, line.get("product_id") or ""))
        if entry is None or not entry.known:
            completed.append(
                {
                    **line,
                    "tags": [],
                    "collections": [],
                    "image_url": line.get("image_url"),
                    "product_url": line.get("product_url"),
                }
            )
            continue
        completed.append(
            {
                **line,
                "product_type": entry.product_type or line.get("product_type"),
                "vendor": line.get("vendor") or entry.vendor,
                "tags": list(entry.tags),
                "collections": list(entry.collections),
                "image_url": entry.image_url or line.get("image_url"),
                # a deleted product's page is gone; its image still shows what was bought
                "product_url": (None if entry.deleted else entry.url) or line.get("product_url"),
            }
        )
    return completed
