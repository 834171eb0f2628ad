"""Who is asking, through Airflow's own login: every page and action depends on ``reader`` or
``actor`` here.

Airflow mounts a plugin's FastAPI app without authentication. The UI's login leaves a JWT in
the ``_token`` cookie (API clients send ``Authorization: Bearer``); the configured auth manager
turns it into a user and answers what that user may do, so the pages follow whatever login the
Airflow deployment uses (simple auth manager, FAB, Keycloak...):

- reading a page needs access to the Airflow website itself (every role, Viewer included);
- an action needs the right to change Airflow variables, which Airflow gives to Op and Admin
  (the simple auth manager and FAB alike) and not to Viewer or User;
- an action's form carries a CSRF token derived from the user's JWT: a page of another site
  can make the browser send the cookie, but cannot read it, so it cannot forge the token.

No token: 401. A token Airflow does not accept: 401 (expired) or 403. Not allowed: 403.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

# The cookie the Airflow UI's login sets (COOKIE_NAME_JWT_TOKEN in Airflow's auth managers).
TOKEN_COOKIE = "_token"
CSRF_FIELD = "csrf_token"
_CSRF_KEY = b"postpurchase pages: form token"


class Refused(Exception):
    """The request may not go on: ``status`` 401 or 403, ``reason`` shown to the person."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PageUser:
    name: str
    may_act: bool
    token: str  # the JWT the request came with: the CSRF token is derived from it

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.token)


def csrf_token_for(jwt: str) -> str:
    return hmac.new(_CSRF_KEY, jwt.encode(), hashlib.sha256).hexdigest()


class Gatekeeper(Protocol):
    async def user_for(self, token: str) -> PageUser:
        """The user ``token`` belongs to, or Refused."""


class AirflowGatekeeper:
    """Asks the Airflow auth manager: the API server's own one unless another is given."""

    def __init__(self, auth_manager: Any = None) -> None:
        self._auth_manager = auth_manager

    def _manager(self) -> Any:
        if self._auth_manager is None:
            from airflow.api_fastapi.app import get_auth_manager

            return get_auth_manager()
        return self._auth_manager

    async def user_for(self, token: str) -> PageUser:
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from jwt import ExpiredSignatureError, InvalidTokenError

        manager = self._manager()
        try:
            user = await manager.get_user_from_token(token)
        except ExpiredSignatureError:
            raise Refused(401, "your Airflow login has expired: log in again") from None
        except InvalidTokenError:
            raise Refused(403, "Airflow does not accept this login token") from None
        if not manager.is_authorized_view(access_view=AccessView.WEBSITE, user=user):
            raise Refused(403, f"{user.get_name()} may not use the Airflow UI")
        may_act = bool(manager.is_authorized_variable(method="PUT", user=user))
        return PageUser(name=str(user.get_name()), may_act=may_act, token=token)


def request_token(request: Request) -> str | None:
    """The bearer token if one is sent (an explicit credential wins), else the UI's cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


async def reader(request: Request) -> PageUser:
    """The signed-in user, allowed to read the pages."""
    token = request_token(request)
    if token is None:
        raise Refused(401, "log in to Airflow first: these pages use Airflow's login")
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return await gatekeeper.user_for(token)


async def form_reader(request: Request, user: Annotated[PageUser, Depends(reader)]) -> PageUser:
    """The signed-in user, on a form that came from one of these pages (a form that changes
    nothing but costs work, such as the what-if replay: any reader may post it, no other site)."""
    await _check_form(request, user)
    return user


async def actor(request: Request, user: Annotated[PageUser, Depends(reader)]) -> PageUser:
    """The signed-in user, allowed to act, on a form that came from one of these pages."""
    if not user.may_act:
        raise Refused(403, f"{user.name} may look but not act: actions need Airflow's Op role")
    await _check_form(request, user)
    return user


async def _check_form(request: Request, user: PageUser) -> None:
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf_token):
        raise Refused(403, "the form is stale or did not come from these pages: reload and retry")


Reader = Annotated[PageUser, Depends(reader)]
Actor = Annotated[PageUser, Depends(actor)]
FormReader = Annotated[PageUser, Depends(form_reader)]
