"""Garbage in, a 4xx out: never a 500, never an unhandled exception behind a polite answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiohttp
import pytest
from issuer_helpers import DEV_CLIENT, RunningIssuer, basic

FORM = "application/x-www-form-urlencoded"
RFC6749_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}

# (id, body bytes, extra headers)
HOSTILE_TOKEN_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("invalid-utf8", b"grant_type=client_credentials&scope=\xff\xfe", DEV_CLIENT),
    ("bad-percent-escape", b"grant_type=client_credentials&scope=%ff%fe", DEV_CLIENT),
    ("half-percent", b"grant_type=client_%&scope=%", DEV_CLIENT),
    ("nul-bytes", b"grant_type=client_credentials%00&sub=a%00b", DEV_CLIENT),
    ("newline-in-sub", b"grant_type=client_credentials&sub=alice%0d%0aSet-Cookie:x", DEV_CLIENT),
    ("only-separators", b"&&&===&&", DEV_CLIENT),
    ("too-many-fields", b"&".join(b"f%d=1" % i for i in range(500)), DEV_CLIENT),
    ("huge-value", b"grant_type=client_credentials&scope=" + b"a" * 30_000, DEV_CLIENT),
    ("unicode-digits-ttl", "grant_type=client_credentials&ttl=١٢٣".encode(), DEV_CLIENT),
    ("float-ttl", b"grant_type=client_credentials&ttl=1e9", DEV_CLIENT),
    ("negative-ttl", b"grant_type=client_credentials&ttl=-5", DEV_CLIENT),
    ("unicode-client", "grant_type=client_credentials&client_id=é&client_secret=ü".encode(), {}),
    ("basic-not-base64", b"grant_type=client_credentials", {"Authorization": "Basic %%%%"}),
    ("basic-not-utf8", b"grant_type=client_credentials", {"Authorization": "Basic /w=="}),
    ("basic-no-colon", b"grant_type=client_credentials", {"Authorization": "Basic YWJj"}),
    ("basic-empty", b"grant_type=client_credentials", {"Authorization": "Basic "}),
    ("basic-huge", b"grant_type=client_credentials", {"Authorization": "Basic " + "QUFB" * 1000}),
    (
        "code-grant-garbage",
        b"grant_type=authorization_code&code=%00&redirect_uri=x&code_verifier=y",
        DEV_CLIENT,
    ),
    (
        "code-grant-long-verifier",
        b"grant_type=authorization_code&code=a&redirect_uri=x&code_verifier=" + b"v" * 2000,
        DEV_CLIENT,
    ),
    (
        "roles-flood",
        b"grant_type=client_credentials&" + b"&".join(b"role=r%d" % i for i in range(60)),
        DEV_CLIENT,
    ),
    ("audience-with-space", b"grant_type=client_credentials&audience=a%20b", DEV_CLIENT),
]


@pytest.fixture
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail if the catch-all middleware had to step in: the cause must be fixed, not masked."""
    caplog.set_level(logging.ERROR, logger="dev_issuer")
    yield
    unhandled = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert not unhandled, unhandled[0].getMessage()


@pytest.mark.parametrize(("body", "headers"), [pytest.param(b, h, id=i) for i, b, h in HOSTILE_TOKEN_BODIES])
async def test_hostile_token_requests_get_a_json_4xx(
    issuer: RunningIssuer,
    client: aiohttp.ClientSession,
    no_unhandled_errors: None,
    body: bytes,
    headers: dict[str, str],
) -> None:
    async with client.post(
        f"{issuer.url}/token", data=body, headers={"Content-Type": FORM, **headers}
    ) as response:
        assert 400 <= response.status < 500, await response.text()
        assert (await response.json())["error"] in RFC6749_ERRORS
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--",
            id="multipart",
        ),
        pytest.param("application/json", b'{"grant_type": "client_credentials"}', id="json"),
        pytest.param("text/plain", b"grant_type=client_credentials", id="text"),
        pytest.param(FORM, b"", id="empty"),
    ],
)
async def test_other_media_types_are_invalid_request(
    issuer: RunningIssuer,
    client: aiohttp.ClientSession,
    no_unhandled_errors: None,
    content_type: str,
    body: bytes,
) -> None:
    async with client.post(
        f"{issuer.url}/token", data=body, headers={"Content-Type": content_type, **DEV_CLIENT}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


async def test_an_oversized_body_is_413_not_500(
    issuer: RunningIssuer, client: aiohttp.ClientSession, no_unhandled_errors: None
) -> None:
    body = b"grant_type=client_credentials&pad=" + b"a" * (128 * 1024)
    async with client.post(f"{issuer.url}/token", data=body, headers={"Content-Type": FORM}) as response:
        assert response.status == 413


async def test_two_authorization_headers_are_refused(
    issuer: RunningIssuer, client: aiohttp.ClientSession, no_unhandled_errors: None
) -> None:
    headers = [("Content-Type", FORM), *DEV_CLIENT.items(), *basic("postman", "").items()]
    async with client.post(
        f"{issuer.url}/token", data=b"grant_type=client_credentials", headers=headers
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("client_id=%ff&redirect_uri=%fe", id="invalid-utf8"),
        pytest.param("client_id=postman&client_id=secureroute-dev", id="duplicate-client"),
        pytest.param("client_id=postman&redirect_uri=http://127.0.0.1:99999/callback", id="bad-port"),
        pytest.param("client_id=postman&redirect_uri=http://[::1/callback", id="bad-ipv6"),
        pytest.param("client_id=postman&redirect_uri=" + "a" * 5000, id="huge-uri"),
        pytest.param("client_id=%00", id="nul"),
        pytest.param("", id="empty"),
        pytest.param(
            "client_id=postman&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback&state=%ff", id="bad-state"
        ),
        pytest.param(
            "client_id=postman&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback&state=a&state=b",
            id="two-states",
        ),
    ],
)
async def test_hostile_authorize_queries_never_500(
    issuer: RunningIssuer, client: aiohttp.ClientSession, no_unhandled_errors: None, query: str
) -> None:
    async with client.get(f"{issuer.url}/authorize?{query}", allow_redirects=False) as response:
        assert response.status in (302, 400), await response.text()
        if response.status == 302:  # only ever to the registered loopback callback, with an error
            assert response.headers["Location"].startswith("http://127.0.0.1:1/callback?error=")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"login=nope&username=alice", id="unknown-login"),
        pytest.param(b"login=%ff&username=%fe", id="invalid-utf8"),
        pytest.param(b"login=a&login=b", id="duplicate-login"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x01\x02", id="binary"),
    ],
)
async def test_hostile_login_posts_never_500(
    issuer: RunningIssuer, client: aiohttp.ClientSession, no_unhandled_errors: None, body: bytes
) -> None:
    async with client.post(
        f"{issuer.url}/authorize", data=body, headers={"Content-Type": FORM}, allow_redirects=False
    ) as response:
        assert response.status == 400
        assert "Location" not in response.headers
