"""What a redemption asks of the shop's platform: create one single-use code, or find it.

An issuer is told the code to create (chosen before the call and stored with the debit), so
asking twice can never make two codes: the second ask is refused as a duplicate
(``CodeTaken``) and ``find`` then confirms the code is there. Errors follow the project's tree
(``postpurchase.exceptions``):

    TransientProviderError   429 (``retry_after`` from Retry-After), 5xx, GraphQL THROTTLED,
                             connection refused or timed out before the request was sent
    PermanentProviderError   401/403, validation errors (Shopify userErrors, WooCommerce 400)
    └── CodeTaken            the code exists already (a retry of a request that got through)
    UnknownOutcome           timed out after sending: the code may exist; retry, then find
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from postpurchase.exceptions import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.loyalty.reward_catalogue import Reward

# Connections kept alive to the platform: one per call that can be in flight (the web app's
# thread pool runs 40 at once). httpx keeps 20 by default; past those, every call in a busy
# moment would open a new connection, with a TLS handshake to a real platform.
KEPT_ALIVE = httpx.Limits(max_connections=100, max_keepalive_connections=40)


class CodeTaken(PermanentProviderError):
    """The platform already has a discount with this code."""


@dataclass(frozen=True)
class CodeRequest:
    """One single-use code for one customer, valid from ``starts_at`` to ``ends_at``."""

    code: str
    reward: Reward
    currency: str
    customer_email: str | None
    customer_platform_id: str | None  # the customer's id on that platform (Shopify)
    starts_at: datetime
    ends_at: datetime

    @property
    def title(self) -> str:
        return f"Loyalty reward {self.reward.name}: {self.code}"


@dataclass(frozen=True)
class IssuedCode:
    code: str
    platform_ref: str  # the discount's id on the platform (Shopify gid, WooCommerce id)


class CodeIssuer(Protocol):
    """Creates codes on a platform with an API (the code pool needs no issuer)."""

    platform: str

    def create(self, request: CodeRequest) -> IssuedCode:
        """Create the code; CodeTaken when it exists, else the errors above."""
        ...

    def find(self, code: str) -> IssuedCode | None:
        """The code's discount on the platform, or None when it does not exist."""
        ...

    def close(self) -> None:
        """Close kept-alive connections."""
        ...


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the delta form; platforms do not send the date form here)."""
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


class PlatformApi:
    """Kept-alive connections to one platform's API, sent through httpx's transport alone.

    The ``httpx.Client`` layers (auth flow, redirects, cookie jar, event hooks) cost a third
    of a call's CPU in this process, and a platform's API needs none of them: credentials are
    headers, set once here."""

    def __init__(self, headers: dict[str, str], *, timeout: float) -> None:
        self._headers = {"User-Agent": f"python-httpx/{httpx.__version__}", **headers}
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._transport = httpx.HTTPTransport(limits=KEPT_ALIVE)

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Request:
        return httpx.Request(
            method,
            url,
            params=params,
            json=json,
            headers=self._headers,
            extensions={"timeout": self._timeout},
        )

    def send(self, request: httpx.Request, what: str) -> httpx.Response:
        """Send ``request`` and read the answer; transport failures become the project's
        errors (see module doc).

        HTTP statuses are left to the caller, except 429 and 5xx, which are transient for
        every platform here.
        """
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientProviderError(f"{what}: could not reach the platform: {exc}") from None
        except httpx.TimeoutException as exc:
            raise UnknownOutcome(
                f"{what}: no answer in time, the request may have been applied: "
                f"{exc.__class__.__name__}"
            ) from None
        except httpx.TransportError as exc:
            raise UnknownOutcome(f"{what}: connection lost after sending: {exc}") from None
        if response.status_code == 429:
            raise TransientProviderError(
                f"{what}: rate limited (429)", retry_after=retry_after(response)
            )
        if response.status_code >= 500:
            raise TransientProviderError(
                f"{what}: platform error {response.status_code}",
                retry_after=retry_after(response),
            )
        if response.status_code in (401, 403):
            raise PermanentProviderError(
                f"{what}: credentials refused ({response.status_code}): {response.text[:200]}"
            )
        return response

    def close(self) -> None:
        self._transport.close()
