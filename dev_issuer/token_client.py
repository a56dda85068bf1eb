"""A tiny synchronous client of a running development issuer, for the CLI and ``dev_stack``.

It ignores proxy environment variables: the issuer is on loopback, and a corporate proxy
setting must not send a client secret elsewhere.

Usage:
    token = fetch_token("http://127.0.0.1:8080", sub="alice", roles=("admin",), ttl_s=600)
    summary = rotate_keys("http://127.0.0.1:8080")
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from jwt_authn.dpop_client import DPoPKey

__all__ = ["DEV_CLIENT_ID", "DEV_CLIENT_SECRET", "IssuerRequestError", "fetch_token", "rotate_keys"]

DEV_CLIENT_ID = "secureroute-dev"
DEV_CLIENT_SECRET = "secureroute-dev-secret"  # noqa: S105 - the published development credential
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class IssuerRequestError(Exception):
    """The issuer refused or could not be reached; the message is safe to print."""


def _request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None, timeout_s: float
) -> Any:
    if urlsplit(url).scheme not in ("http", "https"):
        raise IssuerRequestError(f"not an http(s) URL: {url!r}")
    method = "POST" if data is not None else "GET"
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310 - checked
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
            detail = f"{body['error']}: {body.get('error_description', '')}"
        except (ValueError, KeyError, TypeError):
            detail = f"HTTP {exc.code}"
        raise IssuerRequestError(f"{url} answered {exc.code} ({detail})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IssuerRequestError(f"cannot reach {url}: {exc}") from None


def fetch_token(
    issuer_url: str,
    *,
    client_id: str = DEV_CLIENT_ID,
    client_secret: str = DEV_CLIENT_SECRET,
    sub: str | None = None,
    scope: str | None = None,
    roles: tuple[str, ...] = (),
    ttl_s: int | None = None,
    audience: str | None = None,
    alg: str | None = None,
    dpop_key: DPoPKey | None = None,
    timeout_s: float = 5.0,
) -> str:
    """A fresh access token via client_credentials at the token endpoint named by discovery;
    with ``dpop_key``, a DPoP-bound one (RFC 9449 §5: a proof for the token endpoint goes along)."""
    discovery = _request(issuer_url.rstrip("/") + "/.well-known/openid-configuration", timeout_s=timeout_s)
    token_endpoint = discovery.get("token_endpoint") if isinstance(discovery, dict) else None
    if not isinstance(token_endpoint, str):
        raise IssuerRequestError(f"{issuer_url} has no token_endpoint in its discovery document")
    form: list[tuple[str, str]] = [("grant_type", "client_credentials")]
    optional = {
        "sub": sub,
        "scope": scope,
        "ttl": None if ttl_s is None else str(ttl_s),
        "audience": audience,
    }
    form += [(name, value) for name, value in optional.items() if value is not None]
    form += [("alg", alg)] if alg else []
    form += [("roles", " ".join(roles))] if roles else []
    # RFC 6749 §2.3.1: form-urlencode id and secret before the Basic encoding.
    basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    if dpop_key is not None:
        headers["DPoP"] = dpop_key.proof("POST", token_endpoint)
    answer = _request(token_endpoint, data=urlencode(form).encode(), headers=headers, timeout_s=timeout_s)
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise IssuerRequestError("the token endpoint answered without an access_token")
    if dpop_key is not None and answer.get("token_type") != "DPoP":
        # An issuer that ignores DPoP answers a bearer token: say so rather than print it as bound.
        raise IssuerRequestError("the issuer answered a bearer token, not a DPoP-bound one")
    return token


def rotate_keys(issuer_url: str, *, immediate: bool = False, timeout_s: float = 30.0) -> dict[str, Any]:
    """Ask the issuer (on loopback) to rotate its signing keys; returns its summary (kids only).

    The new keys sign after the JWKS max-age, or at once with ``immediate``."""
    query = "?immediate=true" if immediate else ""
    answer = _request(issuer_url.rstrip("/") + "/admin/rotate" + query, data=b"", timeout_s=timeout_s)
    if not isinstance(answer, dict):
        raise IssuerRequestError("unexpected answer from /admin/rotate")
    return answer
