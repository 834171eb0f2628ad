"""Reading one product from a shop platform's API: Shopify's Admin REST API and WooCommerce's
REST API (v3), shaped like Airflow hooks: built from settings or an Airflow connection, a
client made lazily, typed errors.

``fetch(product_id)`` returns the product as a ``ProductSnapshot``, None when the platform
says there is no such product (404), or raises ``PlatformApiError``. ``stop`` on the error
says the next look-ups would fail the same way (bad credentials 401/403, rate limited 429,
server errors, timeouts and refused connections): a run then stops asking that platform, and
every product still unknown is asked again in a later run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from postpurchase.events import ProductSnapshot
from postpurchase.exceptions import PlatformApiError
from postpurchase.platforms import shopify, shopify_products, woocommerce, woocommerce_products
from postpurchase.platforms.fields import InvalidPayload, parse_as
from postpurchase.settings import Settings

log = logging.getLogger(__name__)

SHOPIFY_CONNECTION = "shopify_admin"
WOOCOMMERCE_CONNECTION = "woocommerce_api"


class ProductApi(Protocol):
    """One platform's product look-up."""

    source: str

    def fetch(self, product_id: str) -> ProductSnapshot | None: ...

    def close(self) -> None: ...


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("retry-after", "")), 0.0)
    except ValueError:
        return None


class _RestApi:
    """GET one JSON document per product; the HTTP client is made at the first call."""

    source = ""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def _get(self, path: str, **options: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        try:
            response = self._client.get(path, **options)
        except httpx.TimeoutException:
            raise PlatformApiError(
                f"{self.source}: no answer within {self.timeout:g}s", stop=True
            ) from None
        except httpx.TransportError as exc:
            raise PlatformApiError(f"{self.source}: cannot connect: {exc}", stop=True) from None
        status = response.status_code
        if status in (401, 403):
            raise PlatformApiError(
                f"{self.source}: {status}: the credentials are refused (check the access "
                "token / consumer key and its read permission on products)",
                stop=True,
            )
        if status == 429:
            raise PlatformApiError(
                f"{self.source}: 429: rate limited", retry_after=_retry_after(response), stop=True
            )
        if status >= 500:
            raise PlatformApiError(f"{self.source}: {status}: platform error", stop=True)
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class ShopifyAdminApi(_RestApi):
    """``GET /admin/api/<version>/products/<id>.json`` with ``X-Shopify-Access-Token``.

    ``shop`` is the myshopify domain (``https://`` is added) or a full URL; product links
    are made on its host, as for product webhooks.
    """

    source = shopify.SOURCE

    def __init__(self, shop: str, token: str, *, version: str, timeout: float) -> None:
        base = shop if "://" in shop else f"https://{shop}"
        super().__init__(base, timeout=timeout)
        self.shop_domain = urlsplit(base).netloc
        self.version = version
        self._token = token

    def fetch(self, product_id: str) -> ProductSnapshot | None:
        response = self._get(
            f"/admin/api/{self.version}/products/{product_id}.json",
            headers={"X-Shopify-Access-Token": self._token, "Accept": "application/json"},
        )
        if response.status_code == 404:
            return None
        body = _json(response, self.source)
        if response.status_code != 200 or not isinstance(body, dict):
            raise PlatformApiError(f"{self.source}: {response.status_code}: unexpected answer")
        try:
            product = parse_as(shopify_products.ShopifyProduct, body.get("product"))
            return ProductSnapshot(**shopify_products.product_fields(product, self.shop_domain))
        except (InvalidPayload, ValidationError) as exc:
            raise PlatformApiError(f"{self.source}: not a product: {exc}") from None


class WooCommerceApi(_RestApi):
    """``GET /wp-json/wc/v3/products/<id>`` with the consumer key and secret (HTTP Basic, which
    WooCommerce accepts over HTTPS)."""

    source = woocommerce.SOURCE

    def __init__(self, url: str, key: str, secret: str, *, timeout: float) -> None:
        super().__init__(url, timeout=timeout)
        self._auth = (key, secret)

    def fetch(self, product_id: str) -> ProductSnapshot | None:
        response = self._get(f"/wp-json/wc/v3/products/{product_id}", auth=self._auth)
        if response.status_code == 404:
            return None
        body = _json(response, self.source)
        if response.status_code != 200:
            raise PlatformApiError(f"{self.source}: {response.status_code}: unexpected answer")
        try:
            product = parse_as(woocommerce_products.WooProduct, body)
            return ProductSnapshot(**woocommerce_products.product_fields(product))
        except (InvalidPayload, ValidationError) as exc:
            raise PlatformApiError(f"{self.source}: not a product: {exc}") from None


def _json(response: httpx.Response, source: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PlatformApiError(f"{source}: {response.status_code}: not JSON") from None


def _no_connections(conn_id: str) -> None:
    return None


def configured_apis(
    settings: Settings,
    *,
    connection: Callable[[str], dict[str, Any] | None] = _no_connections,
) -> dict[str, ProductApi]:
    """The platform APIs the settings (else the connections ``connection`` finds: in Airflow
    ``airflow_glue.connections``) give credentials for, by source; empty when there are
    none, and unknown products then stay unknown."""
    apis: dict[str, ProductApi] = {}
    shop, token = settings.shopify_shop, settings.shopify_admin_token
    conn = {} if shop and token else (connection(SHOPIFY_CONNECTION) or {})
    shop = shop or conn.get("host")
    secret = token.get_secret_value() if token else conn.get("password")
    if shop and secret:
        apis[ShopifyAdminApi.source] = ShopifyAdminApi(
            shop,
            secret,
            version=settings.shopify_api_version,
            timeout=settings.platform_api_timeout_seconds,
        )
    url, key = settings.woocommerce_url, settings.woocommerce_consumer_key
    woo_secret = settings.woocommerce_consumer_secret
    conn = {} if url and key and woo_secret else (connection(WOOCOMMERCE_CONNECTION) or {})
    url, key = url or conn.get("host"), key or conn.get("login")
    consumer_secret = woo_secret.get_secret_value() if woo_secret else conn.get("password")
    if url and key and consumer_secret:
        apis[WooCommerceApi.source] = WooCommerceApi(
            url, key, consumer_secret, timeout=settings.platform_api_timeout_seconds
        )
    return apis
