"""Authorization code + PKCE, end to end with a real HTTP client following the redirects.

The client is a real aiohttp session; the redirect target is a real loopback server
(RFC 8252 §7.3: registered as ``http://127.0.0.1/callback``, any port matches).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from issuer_helpers import (
    DEV_CLIENT,
    Answer,
    Callback,
    FakeClock,
    RunningIssuer,
    authorize_url,
    basic,
    code_request_url,
    login_id_in,
    pkce_pair,
)

PostToken = Callable[..., Awaitable[Answer]]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
STATE = "xyz-ABC_123.~ state with spaces & symbols ?="


@dataclass(frozen=True)
class CodeFlow:
    """The code flow against the live issuer: a real client, redirected to a real loopback callback."""

    issuer: RunningIssuer
    client: aiohttp.ClientSession
    callback: Callback
    post_token: PostToken

    async def sign_in(
        self,
        challenge: str,
        *,
        client_id: str = "postman",
        username: str = "alice",
        roles: tuple[str, ...] = ("admin", "viewer"),
        scope: str = "openid read",
    ) -> dict[str, str]:
        """GET /authorize -> login form -> POST -> 302 -> the callback server; returns what it received."""
        url = code_request_url(
            self.issuer,
            challenge,
            self.callback.url,
            client_id=client_id,
            scope=scope,
            state=STATE,
            nonce="n-0S6_WzA2Mj",
        )
        async with self.client.get(url) as page:
            assert page.status == 200
            assert page.content_type == "text/html"
            html = await page.text()
        assert "Development issuer" in html
        form = [("login", login_id_in(html)), ("username", username), ("action", "approve")]
        form += [("role", r) for r in roles]
        async with self.client.post(f"{self.issuer.url}/authorize", data=form) as landed:
            assert landed.status == 200, await landed.text()
            assert str(landed.url).startswith(self.callback.url)
            assert landed.history[0].status == 302
        return self.callback.received[-1]

    async def exchange(
        self,
        code: str,
        *,
        verifier: str,
        redirect_uri: str | None = None,
        headers: dict[str, str] | None = None,
        client_id: str | None = "postman",
    ) -> Answer:
        """POST /token for ``code``; ``redirect_uri`` is the callback's unless given."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": self.callback.url if redirect_uri is None else redirect_uri,
        }
        if client_id is not None:
            form["client_id"] = client_id
        return await self.post_token(self.issuer.url, form, headers=headers)


@pytest.fixture
def flow(
    issuer: RunningIssuer, client: aiohttp.ClientSession, callback: Callback, post_token: PostToken
) -> CodeFlow:
    return CodeFlow(issuer, client, callback, post_token)


async def test_code_flow_with_pkce_end_to_end(flow: CodeFlow, verify: Verify) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    assert received["state"] == STATE  # unchanged, byte for byte
    assert "error" not in received
    # Postman sends a public client as Basic with an empty password, plus the form fields.
    answer = await flow.exchange(received["code"], verifier=verifier, headers=basic("postman", ""))
    assert answer.status == 200, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    header, claims = await verify(flow.issuer.url, answer.body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["admin", "viewer"]
    assert claims["client_id"] == "postman"
    assert claims["scope"] == "openid read"
    assert claims["aud"] == "secureroute"
    _, id_claims = await verify(flow.issuer.url, answer.body["id_token"], audience="postman")
    assert id_claims["sub"] == "alice"
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"


async def test_confidential_client_uses_the_code_flow_with_its_secret(flow: CodeFlow) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge, client_id="secureroute-dev", roles=())
    no_secret = await flow.exchange(received["code"], verifier=verifier, client_id="secureroute-dev")
    assert no_secret.status == 401
    received = await flow.sign_in(challenge, client_id="secureroute-dev", roles=())
    answer = await flow.exchange(received["code"], verifier=verifier, headers=DEV_CLIENT, client_id=None)
    assert answer.status == 200, answer.body


async def test_wrong_verifier_is_invalid_grant_and_burns_the_code(flow: CodeFlow) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    wrong, _ = pkce_pair()
    answer = await flow.exchange(received["code"], verifier=wrong)
    assert (answer.status, answer.body["error"]) == (400, "invalid_grant")
    # One try per code: the right verifier after a wrong one gets nothing.
    answer = await flow.exchange(received["code"], verifier=verifier)
    assert (answer.status, answer.body["error"]) == (400, "invalid_grant")


async def test_a_code_is_single_use(flow: CodeFlow) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    first = await flow.exchange(received["code"], verifier=verifier)
    assert first.status == 200
    again = await flow.exchange(received["code"], verifier=verifier)
    assert (again.status, again.body["error"]) == (400, "invalid_grant")


async def test_an_expired_code_is_invalid_grant(flow: CodeFlow, clock: FakeClock) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    clock.advance(61)  # codes live 60 s
    answer = await flow.exchange(received["code"], verifier=verifier)
    assert (answer.status, answer.body["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_client_and_redirect_uri(flow: CodeFlow) -> None:
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    other_client = await flow.exchange(
        received["code"], verifier=verifier, headers=DEV_CLIENT, client_id=None
    )
    assert (other_client.status, other_client.body["error"]) == (400, "invalid_grant")
    received = await flow.sign_in(challenge)
    other_uri = await flow.exchange(
        received["code"], verifier=verifier, redirect_uri=flow.callback.url + "/elsewhere"
    )
    assert (other_uri.status, other_uri.body["error"]) == (400, "invalid_grant")


async def test_a_missing_verifier_is_invalid_request(flow: CodeFlow) -> None:
    _, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    form = {"grant_type": "authorization_code", "code": received["code"], "redirect_uri": flow.callback.url}
    answer = await flow.post_token(flow.issuer.url, {**form, "client_id": "postman"})
    assert (answer.status, answer.body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.example/callback", id="foreign-host"),
        pytest.param("https://oauth.pstmn.io/v1/callback/../../evil", id="path-trick"),
        pytest.param("https://oauth.pstmn.io/v1/callbackx", id="prefix"),
        pytest.param("http://127.0.0.1:9/other", id="loopback-other-path"),
        pytest.param("http://evil@127.0.0.1:9/callback", id="loopback-userinfo"),
        pytest.param("http://localhost:9/callback", id="localhost-name"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("", id="missing"),
    ],
)
async def test_an_unregistered_redirect_uri_shows_an_error_and_never_redirects(
    issuer: RunningIssuer, client: aiohttp.ClientSession, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    url = code_request_url(issuer, challenge, redirect_uri, state="s")
    async with client.get(url, allow_redirects=False) as page:
        assert page.status == 400
        assert "Location" not in page.headers
        assert page.content_type == "text/html"
        assert "redirect_uri" in await page.text()


async def test_an_unknown_client_shows_an_error_and_never_redirects(
    issuer: RunningIssuer, client: aiohttp.ClientSession, callback: Callback
) -> None:
    url = authorize_url(issuer, response_type="code", client_id="nobody", redirect_uri=callback.url)
    async with client.get(url, allow_redirects=False) as page:
        assert page.status == 400
        assert "Location" not in page.headers


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-pkce"),
        pytest.param({"code_challenge_method": ""}, "invalid_request", id="no-method-means-plain"),
        pytest.param({"code_challenge": ""}, "invalid_request", id="no-challenge"),
        pytest.param({"code_challenge": "short"}, "invalid_request", id="malformed-challenge"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"scope": "openid root"}, "invalid_scope", id="bad-scope"),
    ],
)
async def test_bad_authorization_requests_go_back_to_the_client_with_state(
    issuer: RunningIssuer,
    client: aiohttp.ClientSession,
    callback: Callback,
    params: dict[str, str],
    error: str,
) -> None:
    _, challenge = pkce_pair()
    async with client.get(code_request_url(issuer, challenge, callback.url, state=STATE, **params)) as landed:
        assert landed.status == 200
    assert callback.received[-1]["error"] == error
    assert callback.received[-1]["state"] == STATE
    assert "code" not in callback.received[-1]


async def test_deny_returns_access_denied(
    issuer: RunningIssuer, client: aiohttp.ClientSession, callback: Callback
) -> None:
    _, challenge = pkce_pair()
    async with client.get(code_request_url(issuer, challenge, callback.url, state=STATE)) as page:
        login = login_id_in(await page.text())
    async with client.post(f"{issuer.url}/authorize", data={"login": login, "action": "deny"}):
        pass
    assert callback.received[-1] == {
        "error": "access_denied",
        "error_description": "the user denied access",
        "state": STATE,
    }


async def test_the_login_form_is_single_use_and_checks_its_input(
    issuer: RunningIssuer, client: aiohttp.ClientSession, callback: Callback
) -> None:
    _, challenge = pkce_pair()
    async with client.get(code_request_url(issuer, challenge, callback.url)) as page:
        html = await page.text()
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    login = login_id_in(html)
    bad_inputs = [
        [("login", login), ("username", "<script>alert(1)</script>")],
        [("login", login), ("username", "")],
        [("login", login), ("username", "bob"), ("role", "root")],
    ]
    for form in bad_inputs:
        async with client.post(f"{issuer.url}/authorize", data=form, allow_redirects=False) as again:
            assert again.status == 400
            assert "Location" not in again.headers
            assert "<script>alert" not in await again.text()
    async with client.post(f"{issuer.url}/authorize", data={"login": login, "username": "bob"}) as ok:
        assert ok.status == 200
    received = callback.received[-1]
    assert "code" in received and "state" not in received  # no state sent, none invented
    async with client.post(
        f"{issuer.url}/authorize", data={"login": login, "username": "bob"}, allow_redirects=False
    ) as reused:
        assert reused.status == 400
        assert "Location" not in reused.headers


async def test_postman_callback_is_registered_for_the_postman_client(
    issuer: RunningIssuer, client: aiohttp.ClientSession, flow: CodeFlow
) -> None:
    postman_callback = "https://oauth.pstmn.io/v1/callback"
    verifier, challenge = pkce_pair()
    url = code_request_url(issuer, challenge, postman_callback, state="st", scope="openid")
    async with client.get(url) as page:
        login = login_id_in(await page.text())
    form = {"login": login, "username": "carol", "role": "editor"}
    async with client.post(f"{issuer.url}/authorize", data=form, allow_redirects=False) as redirect:
        assert redirect.status == 302
        location = urlsplit(redirect.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == postman_callback
    query = parse_qs(location.query)
    assert query["state"] == ["st"]
    # What Postman sends: Basic postman:<empty>, and client_id, code_verifier, redirect_uri and
    # grant_type in the body.
    answer = await flow.exchange(
        query["code"][0], verifier=verifier, redirect_uri=postman_callback, headers=basic("postman", "")
    )
    assert answer.status == 200, answer.body
