"""DPoP through the facade (RFC 9449): what it forwards to the service, what it returns, and the
split deployment end to end (the service trusting the facade's forwarded method and URL only
from its ``trusted_proxies``).

The stub backend records the metadata the facade sends and answers the trailers a test chooses,
on both backends (remote and in-process); the end-to-end cases run the real service and facade
on loopback, with DPoP-bound tokens and proofs from ``jwt_authn.dpop_client``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest

from http_facade.settings import FacadeSettings
from jwt_authn.dpop_client import DPoPKey, DPoPNonces, dpop_headers, dpop_request, nonce_requested
from jwt_authn.testing import LoopbackIssuer
from runtime.settings import SettingsError
from service.server import SecureRouteServer

PROOF = "eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJodG0iOiJHRVQifQ.c2lnbmF0dXJl"
NONCE_CHALLENGE = 'DPoP error="use_dpop_nonce", error_description="use dpop nonce", algs="ES256"'


async def test_the_proof_and_the_requests_method_and_url_are_forwarded(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    headers = {
        "Authorization": "DPoP t0ken",
        "DPoP": PROOF,
        # A client's own forwarding headers are never passed on: the facade says what it saw.
        "DPoP-Htu": "https://elsewhere.example/secure-route",
        "DPoP-Htm": "POST",
    }
    async with http.get(f"{url}/secure-route?page=2#top", headers=headers) as response:
        assert response.status == 200
    sent = stub_backend.metadata[-1]
    assert sent["authorization"] == "DPoP t0ken"
    assert sent["dpop"] == PROOF
    # RFC 9449 §4.2: htu without query and fragment; the Host the client sent, this connection's scheme.
    assert (sent["dpop-htm"], sent["dpop-htu"]) == ("GET", f"{url}/secure-route")


async def test_behind_a_proxy_the_public_base_url_names_the_request(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    """A proxy in front (TLS offload, a path prefix) changes the URL the facade sees; the client's
    proof names the public one: --dpop-public-base-url says what it is."""
    url = await start_facade(
        stub_backend.target, extra=("--dpop-public-base-url", "https://api.example.com/shop/")
    )
    async with http.get(f"{url}/secure-route?x=1", headers={"DPoP": PROOF}) as response:
        assert response.status == 200
    assert stub_backend.metadata[-1]["dpop-htu"] == "https://api.example.com/shop/secure-route"


def test_the_public_base_url_is_checked_at_start() -> None:
    with pytest.raises(SettingsError, match=r"^dpop_public_base_url: must be an http\(s\) URL"):
        FacadeSettings.load(["--dpop-public-base-url", "api.example.com/shop?x"], environ={})


async def test_head_is_forwarded_as_head(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    async with http.head(f"{url}/health", headers={"DPoP": PROOF}) as response:
        assert response.status == 200
    assert stub_backend.metadata[-1]["dpop-htm"] == "HEAD"


async def test_without_a_proof_nothing_dpop_is_forwarded(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route", headers={"Authorization": "Bearer t0ken"}) as response:
        assert response.status == 200
    assert not {"dpop", "dpop-htm", "dpop-htu"} & stub_backend.metadata[-1].keys()


async def test_every_proof_is_forwarded_so_the_guard_can_refuse_two(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    seen: list[list[str]] = []

    async def record(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        seen.append([str(v) for k, v in context.invocation_metadata() or () if k == "dpop"])

    stub_backend.behave = record
    headers = [("Authorization", "DPoP t0ken"), ("DPoP", PROOF), ("DPoP", PROOF + "x")]
    async with http.get(f"{url}/secure-route", headers=headers) as response:
        assert response.status == 200
    assert seen == [[PROOF, PROOF + "x"]]


async def test_a_proof_that_cannot_travel_as_metadata_is_400(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    headers = {"Authorization": "DPoP t0ken", "DPoP": "caf\u00e9".encode().decode("latin-1")}
    async with http.get(f"{url}/secure-route", headers=headers) as response:
        assert response.status == 400
    assert stub_backend.metadata == []


@pytest.mark.parametrize(
    ("trailers", "nonce"),
    [
        (
            (("www-authenticate", "Bearer"), ("www-authenticate", NONCE_CHALLENGE), ("dpop-nonce", "n-1")),
            "n-1",
        ),
        # A nonce that is no RFC 9449 §8.1 NQCHAR string is not passed on; nor are two.
        ((("www-authenticate", NONCE_CHALLENGE), ("dpop-nonce", 'a"b')), None),
        ((("www-authenticate", NONCE_CHALLENGE), ("dpop-nonce", "a"), ("dpop-nonce", "b")), None),
    ],
    ids=["nonce", "nonce_with_a_quote", "two_nonces"],
)
async def test_the_services_nonce_and_challenges_reach_the_client(
    stub_backend: Any,
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
    trailers: tuple[tuple[str, str], ...],
    nonce: str | None,
) -> None:
    async def refuse(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "use dpop nonce", trailing_metadata=trailers)

    stub_backend.behave = refuse
    url = await start_facade(stub_backend.target)
    async with http.get(
        f"{url}/secure-route", headers={"Authorization": "DPoP t", "DPoP": PROOF}
    ) as response:
        assert response.status == 401
        assert response.headers.get("DPoP-Nonce") == nonce
        assert NONCE_CHALLENGE in response.headers["WWW-Authenticate"]
        assert (nonce_requested(response.status, response.headers) == nonce) or nonce is None


# --- the split deployment, end to end --------------------------------------------------------


@pytest.fixture
def facade_backend() -> str:
    """Forwarded DPoP values are for a facade on its own: the remote backend (the in-process one,
    with no peer address, is covered by tests/test_one_program_dpop.py)."""
    return "remote"


@pytest.fixture
def split(
    issuer: LoopbackIssuer,
    make_service_settings: Callable[..., Any],
    start_service: Callable[..., Awaitable[SecureRouteServer]],
    start_facade: Callable[..., Awaitable[str]],
) -> Callable[..., Awaitable[str]]:
    """``await split(*service_flags)``: the service (ready) and a facade in front; the facade's URL."""

    async def start(*flags: str) -> str:
        service = await start_service(make_service_settings(issuer.url, *flags))
        assert await service.authenticator.wait_ready(timeout_s=15)
        return await start_facade(f"127.0.0.1:{service.port}")

    return start


def _bound(issuer: LoopbackIssuer) -> tuple[DPoPKey, str]:
    key = DPoPKey.generate()
    return key, issuer.tokens.issue(sub="dora", claims={"cnf": {"jkt": key.jkt}})


async def test_split_a_dpop_call_through_the_facade_passes_when_the_facade_is_trusted(
    split: Callable[..., Awaitable[str]], issuer: LoopbackIssuer, http: aiohttp.ClientSession
) -> None:
    url = await split("--trusted-proxies", "127.0.0.1")
    key, token = _bound(issuer)
    json = {"Accept": "application/json"}
    async with await dpop_request(
        http, "GET", f"{url}/secure-route", key=key, access_token=token, headers=json
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["subject"] == "dora"
    # The same proof again is a replay; a proof for another URL does not match what the facade saw.
    headers = dpop_headers(key, token, "GET", f"{url}/secure-route")
    statuses = []
    for _ in range(2):
        async with http.get(f"{url}/secure-route", headers=headers) as response:
            statuses.append(response.status)
    assert statuses == [200, 401]
    elsewhere = dpop_headers(key, token, "GET", f"{url}/health")
    async with http.get(f"{url}/secure-route", headers=elsewhere) as response:
        assert response.status == 401
        assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]
        assert "dpop htu mismatch" in await response.text()


async def test_split_an_untrusted_facade_cannot_forward(
    split: Callable[..., Awaitable[str]], issuer: LoopbackIssuer, http: aiohttp.ClientSession
) -> None:
    url = await split("--trusted-proxies", "127.0.0.2")  # loopback, but not the facade (127.0.0.1)
    key, token = _bound(issuer)
    async with await dpop_request(
        http, "GET", f"{url}/secure-route", key=key, access_token=token
    ) as response:
        assert response.status == 401
        assert "dpop forwarding untrusted" in await response.text()
        assert token not in await response.text()


async def test_split_the_nonce_round_trip_through_the_facade(
    split: Callable[..., Awaitable[str]], issuer: LoopbackIssuer, http: aiohttp.ClientSession
) -> None:
    url = await split("--trusted-proxies", "127.0.0.0/8", "--dpop-require-nonce")
    key, token = _bound(issuer)
    first = dpop_headers(key, token, "GET", f"{url}/secure-route")
    async with http.get(f"{url}/secure-route", headers=first) as response:
        assert response.status == 401
        assert nonce_requested(response.status, response.headers)
    nonces = DPoPNonces()
    for _ in range(2):  # the first asks for the nonce and retries; the second uses it at once
        async with await dpop_request(
            http, "GET", f"{url}/secure-route", key=key, access_token=token, nonces=nonces
        ) as response:
            assert response.status == 200, await response.text()
    assert nonces.get(url)
