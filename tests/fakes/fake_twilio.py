"""A fake Twilio Messages API and the signatures Twilio puts on its webhooks.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, Basic auth): 201 with the message JSON
(``sid`` "SM" + 32 hex, ``status`` queued or accepted, ``num_segments`` as a string); 401 on
bad credentials; 400 with Twilio's error shape for a bad ``To`` (21211), a number that replied
STOP (21610, see ``opt_out``) or a missing sender. ``sign(url, params)`` computes the
``X-Twilio-Signature`` Twilio would send to our status and inbound routes.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

from twilio.request_validator import RequestValidator

from .http_fake import FakeServer, Fault, Recorded, Reply

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2


def error(status: int, code: int, message: str) -> Fault:
    return Fault(status, _error_body(status, code, message), {"Content-Type": "application/json"})


def _error_body(status: int, code: int, message: str) -> bytes:
    return json.dumps(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    ).encode()


class FakeTwilio(FakeServer):
    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        more_accounts: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        # other accounts by SID, with their tokens (shops with Twilio accounts of their own)
        self.accounts = {account_sid: auth_token, **(more_accounts or {})}
        self.opted_out: set[str] = set()
        self.sent: list[dict[str, str]] = []

    def opt_out(self, number: str) -> None:
        """The number replied STOP: sends to it now fail with 21610, as on Twilio."""
        self.opted_out.add(number)

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def handle(self, request: Recorded) -> Reply:
        found = re.fullmatch(r"/2010-04-01/Accounts/(AC\w+)/Messages\.json", request.path)
        account = found.group(1) if found else ""
        if request.method != "POST" or account not in self.accounts:
            return Reply(404, _error_body(404, 20404, "The requested resource was not found"))
        path = f"/2010-04-01/Accounts/{account}/Messages.json"
        expected = base64.b64encode(f"{account}:{self.accounts[account]}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return Reply(401, _error_body(401, 20003, "Authenticate"))
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        to = form.get("To", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return Reply(400, _error_body(400, 21211, f"The 'To' number {to} is not valid."))
        if to in self.opted_out:
            return Reply(
                400,
                _error_body(400, 21610, "Attempt to send to unsubscribed recipient"),
            )
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return Reply(
                400, _error_body(400, 21603, "A 'From' or 'MessagingServiceSid' is required.")
            )
        sid = "SM" + secrets.token_hex(16)
        self.sent.append({"sid": sid, "account_sid": account, **form})
        message: dict[str, Any] = {
            "sid": sid,
            "account_sid": account,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "to": to,
            "from": form.get("From"),
            "body": form.get("Body", ""),
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "price": None,
            "date_created": formatdate(usegmt=True).replace("GMT", "+0000"),
            "uri": f"{path[:-5]}/{sid}.json",
        }
        return Reply(201, json.dumps(message).encode(), {"Content-Type": "application/json"})
