"""Every gRPC status through a real facade and a real (programmable) backend, per grpc-gateway's table
(except CANCELLED: the backend dropped the call, a retryable 503, not the client's 499)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest

from http_facade.status_map import GRPC_TO_HTTP

EXPECTED = {
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def abort_with(
    code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str], ...] = ()
) -> Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]:
    async def behave(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, details, trailing_metadata=trailers)

    return behave


def test_table_is_grpc_gateways() -> None:
    assert {code: row.status for code, row in GRPC_TO_HTTP.items()} == {grpc.StatusCode.OK: 200, **EXPECTED}


@pytest.mark.parametrize("code", list(EXPECTED), ids=lambda code: code.name)
async def test_each_status_maps(
    code: grpc.StatusCode,
    stub_backend: Any,
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    stub_backend.behave = abort_with(code, f"details for {code.name}")
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route", headers={"Accept": "application/json"}) as response:
        assert response.status == EXPECTED[code]
        body = await response.json()
        assert body["error"] == code.name.lower()
        assert body["message"]
        # Client errors show the backend's details; server errors a fixed sentence.
        public = GRPC_TO_HTTP[code].public_message
        assert body["message"] == (public or f"details for {code.name}")
        # 429 is the one client status whose details may be grpc-core's internals.
        assert (public is None) == (EXPECTED[code] < 500 and EXPECTED[code] != 429)
        assert response.headers["X-Request-Id"]
        if EXPECTED[code] in (429, 503):
            assert response.headers["Retry-After"] == "5"
        if EXPECTED[code] == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"  # added even without a trailer


async def test_403_carries_the_backend_challenge(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    challenge = 'Bearer error="insufficient_scope", error_description="missing scope", scope="write"'
    stub_backend.behave = abort_with(
        grpc.StatusCode.PERMISSION_DENIED, "missing scope", (("www-authenticate", challenge),)
    )
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route", headers={"Authorization": "Bearer t0k3n"}) as response:
        assert response.status == 403
        assert response.headers["WWW-Authenticate"] == challenge
        assert await response.text() == "403 Forbidden: missing scope"


async def test_401_carries_the_backend_challenge(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    challenge = 'Bearer error="invalid_token", error_description="token expired"'
    stub_backend.behave = abort_with(
        grpc.StatusCode.UNAUTHENTICATED, "token expired", (("www-authenticate", challenge),)
    )
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == challenge


async def test_token_is_never_echoed_even_if_the_backend_does(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    token = "s3cr3t-token-value"

    async def leaky(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad Bearer {token}")

    stub_backend.behave = leaky
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 400
        assert token not in await response.text()


@pytest.mark.parametrize(
    ("authorization", "details_and_expected"),
    [
        # Only the credential is redacted, not the scheme in front of it.
        ("Bearer s3cr3t-token-value", ("bad Bearer s3cr3t-token-value", "bad Bearer [redacted]")),
        # A credential too short to be a secret is left alone: redacting "a" garbled the reason.
        ("a", ("malformed authorization", "malformed authorization")),
        ("Bearer a", ("malformed authorization", "malformed authorization")),
    ],
)
async def test_only_a_plausible_credential_is_redacted_from_details(
    authorization: str,
    details_and_expected: tuple[str, str],
    stub_backend: Any,
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    details, expected = details_and_expected
    stub_backend.behave = abort_with(grpc.StatusCode.INVALID_ARGUMENT, details)
    url = await start_facade(stub_backend.target)
    async with http.get(f"{url}/secure-route", headers={"Authorization": authorization}) as response:
        assert response.status == 400
        assert await response.text() == f"400 Bad Request: {expected}"


async def test_request_id_and_authorization_are_forwarded_as_metadata(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    url = await start_facade(stub_backend.target)
    headers = {"Authorization": "Bearer abc", "X-Request-Id": "rid-7"}
    async with http.get(f"{url}/secure-route", headers=headers) as response:
        assert response.status == 200
        assert response.headers["X-Request-Id"] == "rid-7"
    async with http.get(f"{url}/health") as response:
        generated = response.headers["X-Request-Id"]
    first, second = stub_backend.metadata
    assert first["authorization"] == "Bearer abc"
    assert first["x-request-id"] == "rid-7"
    assert second["x-request-id"] == generated
    assert "authorization" not in second


async def test_slow_backend_is_504(
    stub_backend: Any, start_facade: Callable[..., Awaitable[str]], http: aiohttp.ClientSession
) -> None:
    async def slow(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await asyncio.sleep(5)

    stub_backend.behave = slow
    url = await start_facade(stub_backend.target, timeout_s=0.3)
    async with http.get(f"{url}/health") as response:
        assert response.status == 504
        assert "did not answer in time" in await response.text()
