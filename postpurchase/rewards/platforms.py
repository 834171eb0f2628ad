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

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from postpurchase.exceptions import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.loyalty.reward_catalogue import Reward

# Connections to the platform: one per call that can be in flight (the web app's thread pool
# runs 40 at once), all kept alive between calls.
MAX_CONNECTIONS = 100


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


@dataclass(frozen=True)
class Answer:
    """The platform's answer, read whole."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def retry_after(answer: Answer) -> float | None:
    """Retry-After in seconds (the delta form; platforms do not send the date form here)."""
    raw = answer.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_forever()
    loop.close()


class PlatformApi:
    """Kept-alive connections to one platform's API, through aiohttp.

    aiohttp parses HTTP in C (llhttp): a call costs this process about 40% less CPU than
    through httpx, whose parsing is pure Python. Its client runs on an event loop; the
    redeemer runs in threads (the web app's pool, the CLI, recovery), so the loop runs in a
    thread of its own, started at the first call, and each call waits there for its answer.
    Credentials are headers, set once here.
    """

    def __init__(self, headers: dict[str, str], *, timeout: float) -> None:
        self._headers = headers
        # The whole budget for each phase, as before: a connection from the pool (or a new
        # one), then each wait for the answer's bytes.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._lock = threading.Lock()
        self._running: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None
        self._pid = 0  # the process whose thread runs the loop

    def _started(self) -> tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]:
        with self._lock:
            # A forked child has the loop but not its thread: it starts its own.
            if self._running is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=_serve, args=(loop,), name="platform-api", daemon=True
                ).start()
                session = asyncio.run_coroutine_threadsafe(self._session(), loop).result()
                self._running, self._pid = (loop, session), os.getpid()
            return self._running

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            headers=self._headers,
            timeout=self._timeout,
        )

    @staticmethod
    async def _call(
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        body: Any,
        params: dict[str, str] | None,
    ) -> Answer:
        async with session.request(method, url, json=body, params=params) as response:
            return Answer(response.status, response.headers, await response.read())

    def send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """Send a request and read the answer; transport failures become the project's
        errors (see module doc).

        HTTP statuses are left to the caller, except 429 and 5xx, which are transient for
        every platform here.
        """
        loop, session = self._started()
        call = self._call(session, method, url, json, params)
        try:
            response = asyncio.run_coroutine_threadsafe(call, loop).result()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Nothing was sent: no connection, or none in time.
            raise TransientProviderError(f"{what}: could not reach the platform: {exc}") from None
        except TimeoutError as exc:
            raise UnknownOutcome(
                f"{what}: no answer in time, the request may have been applied: "
                f"{exc.__class__.__name__}"
            ) from None
        except aiohttp.ClientError as exc:
            raise UnknownOutcome(f"{what}: connection lost after sending: {exc!r}") from None
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
        """Close the connections and stop the loop's thread (a later call starts them again)."""
        with self._lock:
            running, self._running = self._running, None
        if running is None or self._pid != os.getpid():
            return
        loop, session = running
        asyncio.run_coroutine_threadsafe(session.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
