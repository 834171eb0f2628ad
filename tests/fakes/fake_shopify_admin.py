"""A fake Shopify Admin GraphQL API for discount codes, answering in the real shapes.

- ``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token``; a wrong token
  gets 401 ``{"errors": "[API] Invalid API key or access token ..."}``.
- ``discountCodeBasicCreate`` / ``discountCodeFreeShippingCreate``: the discount is stored and
  ``{codeDiscountNode {id}, userErrors: []}`` returned; an existing code gets the userError
  ``TAKEN``, an unknown customer or endsAt before startsAt an ``INVALID`` userError.
- ``codeDiscountNodeByCode`` and ``productVariants(query: "sku:...")`` read what is stored.
- ``throttle_next(n)``: the next n requests get 200 with the ``THROTTLED`` error and the cost
  extension; HTTP faults (401, 429 with Retry-After, 5xx, delays) come from ``fail_next``.
- ``latency``: seconds every answer waits (the benchmark's platform).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

from .http_fake import FakeServer, Recorded, Reply

ACCESS_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
API_VERSION = "2025-10"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json"} | (headers or {})
    )


class FakeShopifyAdmin(FakeServer):
    def __init__(self, *, latency: float = 0.0, record: bool = True) -> None:
        super().__init__(record=record, latency=latency)
        self.discounts: dict[str, dict[str, Any]] = {}  # upper-cased code: stored discount
        self.customers: set[str] = set()  # customer ids the shop has (empty: any)
        self.variants: dict[str, str] = {}  # SKU: variant gid
        self._throttled = 0
        self._ids = itertools.count(1_057_371_000)
        self._store_lock = threading.Lock()

    def throttle_next(self, n: int = 1) -> None:
        with self._store_lock:
            self._throttled += n

    def codes(self) -> list[str]:
        with self._store_lock:
            return [d["code"] for d in self.discounts.values()]

    def handle(self, request: Recorded) -> Reply:
        if not re.fullmatch(r"/admin/api/[0-9-]+/graphql\.json", request.path.split("?")[0]):
            return _json(404, {"errors": "Not Found"})
        if request.headers.get("X-Shopify-Access-Token") != ACCESS_TOKEN:
            return _json(
                401,
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                    "password)"
                },
            )
        with self._store_lock:
            if self._throttled:
                self._throttled -= 1
                return _json(
                    200,
                    {
                        "errors": [
                            {
                                "message": "Throttled",
                                "extensions": {
                                    "code": "THROTTLED",
                                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                                },
                            }
                        ],
                        "extensions": {
                            "cost": {
                                "requestedQueryCost": 10,
                                "actualQueryCost": None,
                                "throttleStatus": {
                                    "maximumAvailable": 2000.0,
                                    "currentlyAvailable": 5,
                                    "restoreRate": 100.0,
                                },
                            }
                        },
                    },
                )
        body = json.loads(request.body or b"{}")
        query: str = body.get("query", "")
        variables: dict[str, Any] = body.get("variables") or {}
        if "discountCodeBasicCreate" in query:
            return self._create("discountCodeBasicCreate", "basicCodeDiscount", variables)
        if "discountCodeFreeShippingCreate" in query:
            return self._create(
                "discountCodeFreeShippingCreate", "freeShippingCodeDiscount", variables
            )
        if "codeDiscountNodeByCode" in query:
            with self._store_lock:
                found = self.discounts.get(str(variables.get("code", "")).upper())
            node = {"id": found["id"]} if found else None
            return self._data({"codeDiscountNodeByCode": node})
        if "productVariants" in query:
            sku = re.sub(r"^sku:'?(.*?)'?$", r"\1", str(variables.get("q", "")))
            gid = self.variants.get(sku)
            return self._data({"productVariants": {"nodes": [{"id": gid}] if gid else []}})
        return _json(200, {"errors": [{"message": "Field doesn't exist on type 'Mutation'"}]})

    def _data(self, data: dict[str, Any]) -> Reply:
        cost = {
            "requestedQueryCost": 10,
            "actualQueryCost": 10,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": 1990,
                "restoreRate": 100.0,
            },
        }
        return _json(200, {"data": data, "extensions": {"cost": cost}})

    def _create(self, field: str, argument: str, variables: dict[str, Any]) -> Reply:
        given = variables.get("input") or {}
        errors: list[dict[str, Any]] = []
        code = str(given.get("code") or "")
        if not code:
            errors.append(
                {"field": [argument, "code"], "code": "BLANK", "message": "Code can't be blank"}
            )
        if given.get("endsAt") and given.get("startsAt") and given["endsAt"] <= given["startsAt"]:
            errors.append(
                {
                    "field": [argument, "endsAt"],
                    "code": "INVALID",
                    "message": "Ends at needs to be after starts_at",
                }
            )
        added = (((given.get("context") or {}).get("customers") or {}).get("add")) or []
        unknown = [
            g for g in added if self.customers and g.rsplit("/", 1)[-1] not in self.customers
        ]
        if unknown:
            errors.append(
                {
                    "field": [argument, "context", "customers", "add"],
                    "code": "INVALID",
                    "message": f"Customer {unknown[0]} does not exist",
                }
            )
        with self._store_lock:
            if code and code.upper() in self.discounts:
                errors.append(
                    {
                        "field": [argument, "code"],
                        "code": "TAKEN",
                        "message": "Code must be unique. Please try a different code.",
                    }
                )
            if errors:
                return self._data({field: {"codeDiscountNode": None, "userErrors": errors}})
            gid = f"gid://shopify/DiscountCodeNode/{next(self._ids)}"
            self.discounts[code.upper()] = {"id": gid, "code": code, "kind": field, "input": given}
        return self._data({field: {"codeDiscountNode": {"id": gid}, "userErrors": []}})


if (
    __name__ == "__main__"
):  # a separate process for benchmarks: python -m tests.fakes.fake_shopify_admin
    import sys

    fake = FakeShopifyAdmin(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0, record=False)
    fake.start()
    sys.stdout.write(fake.url + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # serve until the parent closes our stdin
    fake.stop()
