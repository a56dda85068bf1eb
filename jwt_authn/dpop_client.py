"""The client side of DPoP (RFC 9449): a client key, its proofs, gRPC call credentials, HTTP headers.

A DPoP-bound access token (``cnf.jkt``) is useless without the key it is bound to: each request
carries a fresh proof, a small JWT signed by that key, naming the request's method (``htm``) and
URL (``htu``) and the token's hash (``ath``).

- ``DPoPKey``: the client's key pair (ES256 by default), its RFC 7638 thumbprint (``jkt``, what
  the issuer writes into ``cnf.jkt``) and ``proof(htm, htu, access_token=..., nonce=...)``.
- gRPC: ``DPoPCallCredentials`` signs a fresh proof for every call, with gRPC's HTTP/2 mapping:
  ``htm`` is ``POST`` and ``htu`` is ``<scheme>://<:authority>/<package.Service>/<Method>``, the
  scheme ``https`` over TLS and ``http`` over a plaintext loopback channel. Works for grpc.aio
  and threaded channels alike.
- HTTP: ``dpop_headers(...)`` gives ``Authorization: DPoP <token>`` and ``DPoP: <proof>``;
  ``dpop_request(session, ...)`` sends an aiohttp request with them and retries once when the
  server asks for a nonce (``use_dpop_nonce`` with a ``DPoP-Nonce`` header, RFC 9449 §8).

gRPC only sends call credentials over a secure channel. For plaintext loopback (development,
tests, a sidecar), gRPC's documented way is local channel credentials:
``channel_credentials()`` without ``tls`` composes them (``grpc.local_channel_credentials``,
loopback TCP only: gRPC refuses to connect elsewhere).

Never log a token or a proof: both are credentials for as long as they live.

Usage:
    key = DPoPKey.generate()                      # ES256; key.jkt goes into the token request
    dpop = DPoPCallCredentials(key, access_token)
    async with grpc.aio.secure_channel("127.0.0.1:50051", dpop.channel_credentials()) as channel:
        ...                                       # every call carries a fresh proof
    headers = dpop_headers(key, access_token, "GET", "https://api.example.com/v1/hello")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import grpc
from jwcrypto import jwk, jws

__all__ = [
    "DPOP_ALGORITHMS",
    "DPoPCallCredentials",
    "DPoPKey",
    "DPoPNonces",
    "dpop_headers",
    "dpop_request",
    "grpc_htu",
    "http_htu",
    "nonce_requested",
]

#: Proof algorithms a client key may use; ES256 is the default (RFC 9449's examples; every
#: DPoP server supports it, and its proofs are small).
DPOP_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256")
_KEY_PARAMS: dict[str, dict[str, Any]] = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "ES384": {"kty": "EC", "crv": "P-384"},
    "ES512": {"kty": "EC", "crv": "P-521"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "PS256": {"kty": "RSA", "size": 2048},
    "RS256": {"kty": "RSA", "size": 2048},
}
#: Members of a private JWK that never go into a proof's header (RFC 7517 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_TokenSource = str | Callable[[], str]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _fits(key: jwk.JWK, alg: str) -> bool:
    params = _KEY_PARAMS[alg]
    if key.get("kty") != params["kty"]:
        return False
    return "crv" not in params or key.get("crv") == params["crv"]


class DPoPKey:
    """A client's DPoP key pair; makes proofs. The private half never leaves it except through
    ``private_jwk_json()``, for storing the key."""

    def __init__(self, key: jwk.JWK, *, alg: str, clock: Callable[[], float] = time.time) -> None:
        if alg not in DPOP_ALGORITHMS:
            raise ValueError(f"alg: one of {', '.join(DPOP_ALGORITHMS)}, got {alg!r}")
        if not key.has_private:
            raise ValueError("key: a DPoP client key needs its private half to sign proofs")
        if not _fits(key, alg):
            raise ValueError(f"key: a {key.get('kty')} key cannot sign {alg}")
        self._key = key
        self.alg = alg
        self._clock = clock
        public = {name: value for name, value in key.export_public(as_dict=True).items() if name != "kid"}
        #: The public key as it goes into every proof's ``jwk`` header (no ``kid``: RFC 9449 §4.2).
        self.public_jwk: Mapping[str, Any] = public
        #: RFC 7638 SHA-256 thumbprint: the token's ``cnf.jkt`` (and the ``dpop_jkt`` of RFC 9449 §10).
        self.jkt: str = key.thumbprint()
        # The header is the same for every proof: encode it once.
        header = {"typ": "dpop+jwt", "alg": alg, "jwk": public}
        self._header_json = json.dumps(header, separators=(",", ":"))

    @classmethod
    def generate(cls, alg: str = "ES256", *, clock: Callable[[], float] = time.time) -> DPoPKey:
        """A fresh key pair for ``alg`` (ES256 by default)."""
        if alg not in DPOP_ALGORITHMS:
            raise ValueError(f"alg: one of {', '.join(DPOP_ALGORITHMS)}, got {alg!r}")
        return cls(jwk.JWK.generate(**_KEY_PARAMS[alg]), alg=alg, clock=clock)

    @classmethod
    def from_jwk(
        cls,
        private_jwk: Mapping[str, Any] | str,
        *,
        alg: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> DPoPKey:
        """A key from its private JWK (a dict or JSON text); ``alg`` defaults to the JWK's own."""
        try:
            key = jwk.JWK.from_json(private_jwk) if isinstance(private_jwk, str) else jwk.JWK(**private_jwk)
        except (ValueError, TypeError, jwk.InvalidJWKValue) as exc:
            raise ValueError(f"key: not a usable JWK ({type(exc).__name__})") from None
        chosen = alg or key.get("alg") or ("EdDSA" if key.get("kty") == "OKP" else None)
        if chosen is None:
            chosen = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(str(key.get("crv")), "")
        if not chosen:
            raise ValueError("alg: the JWK names no alg; pass alg=")
        return cls(key, alg=str(chosen), clock=clock)

    def private_jwk_json(self) -> str:
        """The private key as JWK JSON, with its ``alg``: a secret, for a file only its owner reads."""
        document = json.loads(self._key.export_private())
        document["alg"] = self.alg
        return json.dumps(document)

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, jkt={self.jkt!r})"  # never the private half

    def proof(self, htm: str, htu: str, *, access_token: str | None = None, nonce: str | None = None) -> str:
        """A fresh proof (RFC 9449 §4.2): new ``jti``, ``iat`` now; ``ath`` when a token is given
        (resource requests), none at the token endpoint; the server's ``nonce`` when it asked."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu,
            "iat": int(self._clock()),
        }
        if access_token is not None:
            payload["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            payload["nonce"] = nonce
        signer = jws.JWS(json.dumps(payload, separators=(",", ":")))
        signer.add_signature(self._key, alg=self.alg, protected=self._header_json)
        return str(signer.serialize(compact=True))


def http_htu(url: str) -> str:
    """A request URL as ``htu``: without query and fragment (RFC 9449 §4.2)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"htu: an absolute http(s) URL is needed, got {url!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def grpc_htu(service_url: str, method_name: str) -> str:
    """``htu`` of a gRPC call from what gRPC tells call credentials: ``service_url`` is
    ``<scheme>://<:authority>/<package.Service>`` and ``method_name`` the bare method.

    gRPC core leaves the scheme empty (``://host:port/...``) on channels without TLS (local
    credentials: its local security connector passes no URL scheme, grpc
    src/core/lib/security/security_connector/local/local_security_connector.cc; seen with
    grpcio 1.85); such a call goes over plaintext HTTP/2, so its scheme is ``http``. Over TLS it
    writes ``https`` and drops a default port 443 from the authority, as RFC 3986 does."""
    scheme, separator, rest = service_url.partition("://")
    if not separator or "/" not in rest:
        raise ValueError(f"service_url: not <scheme>://<authority>/<service>: {service_url!r}")
    return f"{scheme or 'http'}://{rest}/{method_name}"


class DPoPNonces:
    """The last ``DPoP-Nonce`` each server (origin) sent (RFC 9449 §8.2: a client uses it in its
    next proofs to that server). Thread-safe; keeps the most recent ``max_origins`` origins."""

    def __init__(self, *, max_origins: int = 256) -> None:
        self._max_origins = max_origins
        self._nonces: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"

    def get(self, url: str) -> str | None:
        with self._lock:
            return self._nonces.get(self._origin(url))

    def remember(self, url: str, nonce: str) -> None:
        origin = self._origin(url)
        with self._lock:
            self._nonces[origin] = nonce
            self._nonces.move_to_end(origin)
            while len(self._nonces) > self._max_origins:
                self._nonces.popitem(last=False)


def _token(source: _TokenSource) -> str:
    return source if isinstance(source, str) else source()


def dpop_headers(
    key: DPoPKey, access_token: str, method: str, url: str, *, nonce: str | None = None
) -> dict[str, str]:
    """``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for one HTTP request."""
    return {
        "Authorization": f"DPoP {access_token}",
        "DPoP": key.proof(method.upper(), http_htu(url), access_token=access_token, nonce=nonce),
    }


#: One comma-separated element of a WWW-Authenticate value: quoted strings may hold commas.
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
#: An element that starts a challenge: a scheme, then nothing or its first auth-param (RFC 9110 §11.6.1).
_CHALLENGE_START = re.compile(rf"({_TCHARS})(?:\s+(.*))?", re.DOTALL)
_PARAM = re.compile(rf'\s*({_TCHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*', re.DOTALL)


def _challenge_params(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Each challenge of ``WWW-Authenticate`` values, as (scheme in lower case, its auth-params);
    several challenges may share one value, as a proxy joins them (``Bearer, DPoP error=...``)."""
    found: list[tuple[str, dict[str, str]]] = []
    for value in values:
        for element in _ELEMENT.findall(value):
            text = element.strip()
            start = _CHALLENGE_START.fullmatch(text)
            if start is not None and not text[len(start.group(1)) :].lstrip().startswith("="):
                found.append((start.group(1).lower(), {}))
                text = start.group(2) or ""
            param = _PARAM.fullmatch(text)
            if param is not None and found:
                raw = param.group(2)
                unquoted = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
                found[-1][1][param.group(1).lower()] = unquoted
    return found


def _asks_for_nonce(challenges: list[str]) -> bool:
    return any(
        scheme == "dpop" and params.get("error") == "use_dpop_nonce"
        for scheme, params in _challenge_params(challenges)
    )


def nonce_requested(status: int, headers: Mapping[str, str] | Any) -> str | None:
    """The nonce to retry with when an HTTP answer asks for one (401 with a DPoP challenge
    ``error="use_dpop_nonce"`` and a ``DPoP-Nonce`` header, RFC 9449 §8 and §9), else None.
    ``headers`` may be a multidict (aiohttp) or a plain mapping."""
    getall = getattr(headers, "getall", None)
    challenges = list(getall("WWW-Authenticate", [])) if getall else [headers.get("WWW-Authenticate", "")]
    nonce = headers.get("DPoP-Nonce")
    if status == 401 and nonce and _asks_for_nonce(challenges):
        return str(nonce)
    return None


async def dpop_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    key: DPoPKey,
    access_token: str,
    nonces: DPoPNonces | None = None,
    **kwargs: Any,
) -> aiohttp.ClientResponse:
    """Send ``method url`` with a DPoP token and a fresh proof; when the server asks for a nonce,
    retry once with it. The caller reads and releases the response (``async with`` works).

    With ``nonces``, the server's last nonce is used from the first try and every ``DPoP-Nonce``
    it sends is remembered. A body given as an async stream cannot be sent twice: pass bytes."""
    nonce = nonces.get(url) if nonces is not None else None
    # The caller's other headers; its own credentials, in any letter case, never travel beside ours.
    extra = {
        name: value
        for name, value in dict(kwargs.pop("headers", None) or {}).items()
        if name.lower() not in ("authorization", "dpop")
    }
    for attempt in range(2):
        headers = {**extra, **dpop_headers(key, access_token, method, url, nonce=nonce)}
        response = await session.request(method, url, headers=headers, **kwargs)
        fresh = response.headers.get("DPoP-Nonce")
        if fresh and nonces is not None:
            nonces.remember(url, fresh)
        retry_with = nonce_requested(response.status, response.headers)
        if attempt == 1 or retry_with is None or retry_with == nonce:
            return response
        response.release()
        nonce = retry_with
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


class _ProofPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, owner: DPoPCallCredentials) -> None:
        self._owner = owner

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            metadata = self._owner.metadata(context.service_url, context.method_name)
        except Exception as exc:  # gRPC wants every failure through the callback
            # The call fails with UNAVAILABLE and this message; never the token.
            callback((), ValueError(f"DPoP proof not made: {type(exc).__name__}"))
            return
        callback(metadata, None)


class DPoPCallCredentials:
    """gRPC call credentials that send ``authorization: DPoP <token>`` and a fresh ``dpop`` proof
    (``htm`` ``POST``, ``htu`` per ``grpc_htu``, ``ath``) on every call of a channel.

    ``access_token`` is the token, or a function returning the current one (called per call, on
    a gRPC thread: keep it quick). After a ``use_dpop_nonce`` refusal, ``retry_with_nonce(err)``
    keeps the server's nonce for the next proofs and says whether to retry."""

    def __init__(self, key: DPoPKey, access_token: _TokenSource, *, nonce: str | None = None) -> None:
        self.key = key
        self._access_token = access_token
        #: The server nonce put into proofs (RFC 9449 §8); None until a server sends one.
        self.nonce = nonce
        self.call_credentials: grpc.CallCredentials = grpc.metadata_call_credentials(
            _ProofPlugin(self), name="dpop"
        )

    def metadata(self, service_url: str, method_name: str) -> tuple[tuple[str, str], ...]:
        """What the plugin sends for one call (also usable per call without the plugin)."""
        token = _token(self._access_token)
        proof = self.key.proof(
            "POST", grpc_htu(service_url, method_name), access_token=token, nonce=self.nonce
        )
        return (("authorization", f"DPoP {token}"), ("dpop", proof))

    def channel_credentials(self, tls: grpc.ChannelCredentials | None = None) -> grpc.ChannelCredentials:
        """Channel credentials carrying these call credentials: over ``tls`` (from
        ``grpc.ssl_channel_credentials``), or without it over plaintext loopback TCP via
        ``grpc.local_channel_credentials`` (gRPC sends call credentials on secure channels only;
        local credentials are its documented way for loopback, and refuse any other peer)."""
        base = tls if tls is not None else grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        return grpc.composite_channel_credentials(base, self.call_credentials)

    def retry_with_nonce(self, error: grpc.RpcError) -> bool:
        """True (and the nonce kept) when ``error`` is the server asking for a DPoP nonce:
        UNAUTHENTICATED with a ``www-authenticate`` DPoP ``use_dpop_nonce`` challenge and a
        ``dpop-nonce`` trailer. Retry the call once then."""
        code = getattr(error, "code", None)
        trailers = getattr(error, "trailing_metadata", None)
        if code is None or trailers is None or code() != grpc.StatusCode.UNAUTHENTICATED:
            return False
        metadata = trailers() or ()
        challenges = [str(v) for k, v in metadata if k == "www-authenticate"]
        nonces = [str(v) for k, v in metadata if k == "dpop-nonce"]
        if len(nonces) != 1 or not _asks_for_nonce(challenges) or nonces[0] == self.nonce:
            return False
        self.nonce = nonces[0]
        return True
