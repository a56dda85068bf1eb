"""Types and helpers shared by the development issuer's tests (imported by conftest and tests).

Usage:
    from issuer_helpers import DEV_CLIENT, RunningIssuer, pkce_pair
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from dev_issuer import IssuerConfig

WAIT_S = 15.0


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header (RFC 7617), as a headers dict."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


DEV_CLIENT = basic("secureroute-dev", "secureroute-dev-secret")
PRIVATE_PARAMS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_LOGIN_ID = re.compile(r'name="login" value="([A-Za-z0-9_-]+)"')


class FakeClock:
    """A wall clock the test moves by hand; starts at the real time so tokens verify normally."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RunningIssuer:
    url: str
    state_dir: Path
    config: IssuerConfig
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


@dataclass
class Callback:
    """A loopback redirect target (RFC 8252 §7.3): records every query it receives."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def login_id_in(html: str) -> str:
    """The hidden login id of the rendered login form."""
    found = _LOGIN_ID.search(html)
    assert found, "no login form in the page"
    return found.group(1)


def authorize_url(issuer: RunningIssuer, **params: str) -> str:
    return f"{issuer.url}/authorize?{urlencode(params)}"


def code_request_url(issuer: RunningIssuer, challenge: str, redirect_uri: str, /, **params: str) -> str:
    """``/authorize`` asking for a code for the postman client, with an S256 PKCE challenge;
    ``params`` add query fields or replace these."""
    query = {
        "response_type": "code",
        "client_id": "postman",
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return authorize_url(issuer, **{**query, **params})
