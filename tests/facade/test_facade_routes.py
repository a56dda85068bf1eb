"""The facade in front of the live service: routes, content negotiation, 401, 404, 405, HEAD, headers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from helpers import nested
from multidict import CIMultiDict

from jwt_authn.testing import Fault, LoopbackIssuer
from runtime.request_id import RequestIdFilter


async def test_health_is_plain_text(facade_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{facade_url}/health") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.text() == "Healthy"


async def test_head_works_where_get_does(facade_url: str, http: aiohttp.ClientSession) -> None:
    async with http.head(f"{facade_url}/health") as response:
        assert response.status == 200
        assert await response.read() == b""
    async with http.head(f"{facade_url}/secure-route") as response:
        assert response.status == 401


async def test_secure_route_with_token(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue(sub="carol")
    async with http.get(
        f"{facade_url}/secure-route", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.text() == "Super secret stuff"


async def test_secure_route_as_json(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue(sub="carol", roles=["admin"])
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    assert body["message"] == "Super secret stuff"
    assert body["subject"] == "carol"
    assert body["claims"]["sub"] == "carol"
    # Integer claims stay integers (Struct holds doubles: they used to come back as 1.7e9 floats).
    assert type(body["claims"]["exp"]) is int and type(body["claims"]["iat"]) is int
    assert body["claims"]["roles"] == ["admin"]


async def test_missing_token_is_401_with_challenge(facade_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{facade_url}/secure-route") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error=" not in response.headers["WWW-Authenticate"]
        assert (await response.text()).startswith("401 Unauthorized")


async def test_bad_token_is_401_and_never_echoed(facade_url: str, http: aiohttp.ClientSession) -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        body = await response.json()
        raw = await response.text()
    assert body["error"] == "unauthenticated"
    assert body["message"]
    assert token not in raw
    assert token not in response.headers["WWW-Authenticate"]


async def test_expired_token_reason_reaches_the_client(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue(ttl_s=-600)
    async with http.get(
        f"{facade_url}/secure-route", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 401
        assert "expired" in (await response.text())


async def test_unknown_path_is_404(facade_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{facade_url}/nope") as response:
        assert response.status == 404
        assert len(await response.read()) < 100
        assert response.headers["X-Request-Id"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_known_path_with_other_method_is_405(
    facade_url: str, http: aiohttp.ClientSession, method: str
) -> None:
    async with http.request(method, f"{facade_url}/secure-route") as response:
        assert response.status == 405
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
        assert response.headers["X-Request-Id"]


async def test_request_id_is_kept_or_generated(facade_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{facade_url}/health", headers={"X-Request-Id": "abc-123"}) as response:
        assert response.headers["X-Request-Id"] == "abc-123"
    async with http.get(f"{facade_url}/health") as response:
        generated = response.headers["X-Request-Id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    async with http.get(f"{facade_url}/health", headers={"X-Request-Id": "x" * 129}) as response:
        assert response.headers["X-Request-Id"] != "x" * 129
    async with http.get(f"{facade_url}/secure-route") as response:  # an error response too
        assert response.status == 401 and response.headers["X-Request-Id"]


async def test_request_id_reaches_the_service(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="service")  # the per-call line is DEBUG
    # The filter our log handler carries (runtime.logs): it stamps each record with the id.
    caplog.handler.addFilter(RequestIdFilter())
    token = issuer.tokens.issue(sub="dave")
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "trace-me-42"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 200
    served = [r for r in caplog.records if r.name == "service.handlers" and "SecureRoute" in r.getMessage()]
    assert served and all(getattr(r, "request_id", None) == "trace-me-42" for r in served)
    assert not any(token in record.getMessage() for record in caplog.records)


async def test_large_token_is_401_not_a_crash(facade_url: str, http: aiohttp.ClientSession) -> None:
    # 12 KiB: above jwt_authn's token cap, below the facade's header cap.
    headers = {"Authorization": "Bearer " + "a" * 12 * 1024}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 401


async def test_huge_header_is_431_and_not_logged(
    facade_url: str, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    headers = {"Authorization": "Bearer " + "q" * 64 * 1024}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 431
        assert await response.text() == "431 Request Header Fields Too Large"
    async with http.get(f"{facade_url}/health") as response:  # and the facade is still fine
        assert response.status == 200
    assert "qqqqqqqq" not in caplog.text
    assert "rejected an oversized request head (HTTP 431)" in caplog.text


async def test_non_ascii_authorization_is_400(facade_url: str, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": "Bearer caf\u00e9".encode().decode("latin-1")}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 400
        assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


async def test_two_authorization_headers_are_401_even_when_both_are_valid(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    """Both reach the service, which refuses more than one (as it does over gRPC)."""
    first, second = issuer.tokens.issue(sub="carol"), issuer.tokens.issue(sub="mallory")
    headers = CIMultiDict([("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")])
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 401
        assert await response.text() == "401 Unauthorized: malformed authorization"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_non_printable_second_authorization_header_is_400(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue()
    headers = CIMultiDict(
        [
            ("Authorization", f"Bearer {token}"),
            ("Authorization", "Bearer caf\u00e9".encode().decode("latin-1")),
        ]
    )
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 400
        assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    # /health forwards the header too: the same check, not a 500 from grpc-core refusing it.
    async with http.get(f"{facade_url}/health", headers=headers) as response:
        assert response.status == 400


@pytest.mark.parametrize(("levels", "status"), [(15, 200), (16, 401), (40, 401)])
async def test_deeply_nested_claims_get_an_answer_never_a_5xx(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer, levels: int, status: int
) -> None:
    token = issuer.tokens.issue(claims={"deep": nested(levels)})
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == status
        if status == 200:
            assert (await response.json())["claims"]["deep"] == nested(levels)
        else:
            assert 'error_description="malformed claims"' in response.headers["WWW-Authenticate"]


async def test_a_new_kid_while_the_issuer_dribbles_is_a_prompt_401_not_a_504(
    issuer: LoopbackIssuer,
    start_service: Any,
    make_service_settings: Any,
    start_facade: Any,
    http: aiohttp.ClientSession,
) -> None:
    """The service waits for an on-demand key refresh at most its refresh wait (1 s), well
    inside the facade's backend deadline (here 3 s), so the caller gets the 401 it is owed."""
    service = await start_service(make_service_settings(issuer.url, "--cooldown-s", "0.05"))
    assert await service.authenticator.wait_ready(timeout_s=10)
    facade_url = await start_facade(f"127.0.0.1:{service.port}", timeout_s=3.0)
    issuer.rotate("ES256")
    issuer.fault = Fault(delay_s=20, only="jwks")  # past the backend deadline, inside the fetch timeout
    await asyncio.sleep(0.1)  # past the cooldown
    headers = {"Authorization": f"Bearer {issuer.tokens.issue()}"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize("with_dpop_header", [False, True], ids=["bearer_alone", "bearer_with_dpop_header"])
async def test_a_dpop_bound_token_sent_as_bearer_is_401(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer, with_dpop_header: bool
) -> None:
    # RFC 9449 §7.2: the binding would protect nothing if the token also worked as a bearer token.
    token = issuer.tokens.issue(
        sub="carol", claims={"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
    )
    headers = {"Authorization": f"Bearer {token}"}
    if with_dpop_header:
        headers["DPoP"] = "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert token not in await response.text()
