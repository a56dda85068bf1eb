"""Test helpers for services that embed jwt_authn: a token factory and a loopback issuer.

``LoopbackIssuer`` is a real OpenID Connect issuer served by aiohttp on 127.0.0.1 (discovery
document and JWKS), with counters and switches for the failures a real issuer has: going
down, answering slowly, answering garbage, rotating and removing keys. ``TokenFactory``
signs tokens with the issuer's keys (or with any other key, for hostile cases).

``LoopbackIssuerThread`` serves one from its own event-loop thread, for synchronous tests (a
threaded ``grpc.server`` with ``SyncAuthenticator``).

Usage:
    async with LoopbackIssuer(audience="orders") as issuer:
        config = IssuerConfig(issuer=issuer.url, audiences=("orders",))
        token = issuer.tokens.issue(sub="alice", scope="read")  # aud "orders"
        assert issuer.jwks_fetches == 0

    with LoopbackIssuerThread(audience="orders") as running:  # in a plain ``def`` test
        config = IssuerConfig(issuer=running.url, audiences=("orders",))
        token = running.tokens.issue(sub="alice")
        running.stop()  # the issuer goes down (running.start() brings it back)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_encode

__all__ = [
    "Fault",
    "LoopbackIssuer",
    "LoopbackIssuerThread",
    "TokenFactory",
    "generate_key",
    "make_dpop_proof",
]

_KEY_PARAMS: dict[str, dict[str, Any]] = {
    "RS": {"kty": "RSA", "size": 2048},
    "PS": {"kty": "RSA", "size": 2048},
    "ES256": {"kty": "EC", "crv": "P-256"},
    "ES384": {"kty": "EC", "crv": "P-384"},
    "ES512": {"kty": "EC", "crv": "P-521"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}


def generate_key(alg: str, kid: str | None = None) -> jwk.JWK:
    """A fresh private key fit for ``alg``, with ``kid``, ``alg`` and ``use`` set."""
    params = _KEY_PARAMS.get(alg) or _KEY_PARAMS[alg[:2]]
    key = jwk.JWK.generate(**params, kid=kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg=alg, use="sig")
    return key


def encode_segment(value: Mapping[str, Any] | bytes | str) -> str:
    """base64url (no padding) of a JSON object, raw bytes or text."""
    if isinstance(value, Mapping):
        value = json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        value = value.encode()
    return str(base64url_encode(value))


def sign_compact(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, key: jwk.JWK) -> str:
    """A compact JWS of exactly this header and payload, signed with ``key`` by ``header['alg']``."""
    signing_input = f"{encode_segment(header)}.{encode_segment(payload)}"
    engine = jws.JWA.signing_alg(header["alg"])
    signature = engine.sign(key, signing_input.encode())
    return f"{signing_input}.{encode_segment(signature)}"


def make_dpop_proof(
    key: jwk.JWK,
    *,
    htm: str,
    htu: str,
    iat: float,
    token: str | None = None,
    nonce: str | None = None,
    claims: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
    sign_with: jwk.JWK | None = None,
) -> str:
    """A DPoP proof (RFC 9449 §4.2) by ``key``, of any shape, hostile ones included, for tests:
    ``claims``/``headers`` override or add, ``drop`` removes, ``sign_with`` signs with another key
    than the one in the header. With ``token``, ``ath`` is its hash. (Clients use
    ``jwt_authn.dpop_client``.)"""
    alg = str(key.get("alg") or "ES256")
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.export_public(as_dict=True)}
    header["jwk"].pop("kid", None)
    header.update(headers or {})
    payload: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(iat)}
    if token is not None:
        payload["ath"] = encode_segment(hashlib.sha256(token.encode()).digest())
    if nonce is not None:
        payload["nonce"] = nonce
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
        header.pop(name, None)
    return sign_compact(header, payload, sign_with or key)


@dataclass
class TokenFactory:
    """Signs access tokens (RFC 9068 shape) with keys it holds, one current key per algorithm."""

    issuer: str
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    #: ``aud`` of tokens issued without one: set it to your service's audience.
    default_audience: str = "api"
    keys: dict[str, jwk.JWK] = field(default_factory=dict)  # alg -> current signing key

    def __post_init__(self) -> None:
        for alg in self.algorithms:
            self.keys.setdefault(alg, generate_key(alg))

    def issue(
        self,
        *,
        sub: str = "alice",
        aud: str | list[str] | None = None,
        scope: str | None = None,
        roles: Iterable[str] | None = None,
        ttl_s: float = 300.0,
        alg: str | None = None,
        now: float | None = None,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: jwk.JWK | None = None,
        drop: Iterable[str] = (),
    ) -> str:
        """A signed token. ``claims``/``headers`` override or add; ``drop`` removes claims or headers."""
        alg = alg or self.algorithms[0]
        signing_key = key or self.keys[alg]
        issued_at = int(now if now is not None else time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud if aud is not None else self.default_audience,
            "iat": issued_at,
            "exp": int(issued_at + ttl_s),
            "jti": uuid.uuid4().hex,
            "client_id": "tests",
        }
        if scope is not None:
            payload["scope"] = scope
        if roles is not None:
            payload["roles"] = list(roles)
        payload.update(claims or {})
        header: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": signing_key.get("kid")}
        header.update(headers or {})
        for name in drop:
            payload.pop(name, None)
            header.pop(name, None)
        return sign_compact(header, payload, signing_key)

    def rotate(self, alg: str) -> jwk.JWK:
        """Make a new current key for ``alg``; returns the old one (still published by the issuer)."""
        old = self.keys[alg]
        self.keys[alg] = generate_key(alg)
        return old


@dataclass
class Fault:
    """What the loopback issuer does wrong. Every field off means a healthy issuer."""

    status: int = 200  # answer this status instead of 200
    delay_s: float = 0.0  # wait this long before answering
    body: bytes | None = None  # answer this body instead of the real document
    content_type: str = "application/json"
    only: str | None = None  # "discovery" or "jwks": limit the fault to one document


class LoopbackIssuer:
    """A real OIDC issuer on 127.0.0.1 serving ``/.well-known/openid-configuration`` and ``/jwks``."""

    def __init__(
        self,
        *,
        algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA"),
        audience: str = "api",
        cache_control: str | None = None,
        port: int = 0,
    ) -> None:
        self._port = port
        self._algorithms = algorithms
        self._audience = audience
        self.cache_control = cache_control
        self.fault = Fault()
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        #: Overrides the ``issuer`` the discovery document claims (to test the mismatch check).
        self.discovery_issuer: str | None = None
        self._extra_public_keys: list[jwk.JWK] = []
        self._withdrawn: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.tokens: TokenFactory

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks"

    @property
    def port(self) -> int:
        return self._port

    async def __aenter__(self) -> LoopbackIssuer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve (again, on the same port after ``stop``)."""
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await self._site.start()
        if self._port == 0:
            server = self._site._server
            assert server is not None
            self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if not hasattr(self, "tokens"):
            self.tokens = TokenFactory(self.url, self._algorithms, self._audience)

    async def stop(self) -> None:
        """Go down: connections to the port are refused until ``start``."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Keys ---------------------------------------------------------------------------

    def public_jwks(self) -> dict[str, Any]:
        keys = [*self.tokens.keys.values(), *self._extra_public_keys]
        return {"keys": [k.export_public(as_dict=True) for k in keys if k.get("kid") not in self._withdrawn]}

    def rotate(self, alg: str) -> str:
        """Publish a new current key for ``alg``, keeping the old one published. Returns the old kid."""
        old = self.tokens.rotate(alg)
        self._extra_public_keys.append(old)
        return str(old.get("kid"))

    def withdraw(self, kid: str) -> None:
        """Stop publishing the key ``kid``."""
        self._withdrawn.add(kid)

    def kid(self, alg: str) -> str:
        return str(self.tokens.keys[alg].get("kid"))

    # Handlers -----------------------------------------------------------------------

    async def _faulty(self, document: str) -> web.Response | None:
        fault = self.fault
        if fault.only not in (None, document):
            return None
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status != 200 or fault.body is not None:
            return web.Response(status=fault.status, body=fault.body or b"", content_type=fault.content_type)
        return None

    def _headers(self) -> dict[str, str]:
        return {"Cache-Control": self.cache_control} if self.cache_control else {}

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        self.discovery_fetches += 1
        faulty = await self._faulty("discovery")
        if faulty is not None:
            return faulty
        document = {
            "issuer": self.discovery_issuer or self.url,
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": list(self._algorithms),
        }
        return web.json_response(document, headers=self._headers())

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.jwks_fetches += 1
        faulty = await self._faulty("jwks")
        if faulty is not None:
            return faulty
        return web.json_response(self.public_jwks(), headers=self._headers())


class LoopbackIssuerThread:
    """A ``LoopbackIssuer`` on its own event loop in a daemon thread, as a context manager for
    synchronous tests. ``issuer`` is the issuer itself: its counters, ``fault``, ``rotate()``,
    ``withdraw()`` and ``tokens`` work from any thread; its coroutines run through ``run()``."""

    def __init__(self, *, timeout_s: float = 10.0, **issuer_options: Any) -> None:
        #: The issuer, with the options of ``LoopbackIssuer`` (``algorithms``, ``audience``, ...).
        self.issuer = LoopbackIssuer(**issuer_options)
        #: Longest ``run()`` waits for the issuer's loop (a wedged test fails instead of hanging).
        self.timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.issuer.url

    @property
    def tokens(self) -> TokenFactory:
        return self.issuer.tokens

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the issuer's loop and return its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("LoopbackIssuerThread: not entered (use it in a with statement)")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout_s)

    def start(self) -> None:
        """Serve again on the same port, after ``stop()``."""
        self.run(self.issuer.start())

    def stop(self) -> None:
        """Go down: connections are refused until ``start()``."""
        self.run(self.issuer.stop())

    def __enter__(self) -> LoopbackIssuerThread:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="loopback-issuer", daemon=True)
        self._thread.start()
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.stop()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout_s)
            loop.close()
            self._loop = self._thread = None
