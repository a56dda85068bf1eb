"""The client_credentials grant: good requests, RFC 9068 tokens, and RFC 6749 §5.2 refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from issuer_helpers import DEV_CLIENT, Answer, RunningIssuer, basic

from dev_issuer import ClientConfig

PostToken = Callable[..., Awaitable[Answer]]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


async def test_basic_auth_gets_an_rfc9068_token(
    issuer: RunningIssuer, post_token: PostToken, verify: Verify
) -> None:
    answer = await post_token(
        issuer.url, {"grant_type": "client_credentials", "scope": "read write"}, headers=DEV_CLIENT
    )
    assert answer.status == 200, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.body["token_type"] == "Bearer"
    assert answer.body["expires_in"] == 3600
    assert answer.body["scope"] == "read write"
    header, claims = await verify(issuer.url, answer.body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"]
    assert claims["iss"] == issuer.url
    assert claims["sub"] == "secureroute-dev"  # RFC 9068 §2.2: the client itself
    assert claims["aud"] == "secureroute"
    assert claims["client_id"] == "secureroute-dev"
    assert claims["scope"] == "read write"
    assert claims["roles"] == []
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]


async def test_client_secret_post_works_too(issuer: RunningIssuer, post_token: PostToken) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "secureroute-dev",
        "client_secret": "secureroute-dev-secret",
    }
    answer = await post_token(issuer.url, form)
    assert answer.status == 200, answer.body


async def test_dev_client_chooses_sub_roles_ttl_alg_and_audience(
    issuer: RunningIssuer, post_token: PostToken, verify: Verify
) -> None:
    form = [
        ("grant_type", "client_credentials"),
        ("sub", "alice"),
        ("roles", "admin editor"),
        ("role", "viewer"),
        ("ttl", "600"),
        ("alg", "ES256"),
        ("audience", "other-api"),
        ("scope", "read"),
    ]
    answer = await post_token(issuer.url, form, headers=DEV_CLIENT)
    assert answer.status == 200, answer.body
    assert answer.body["expires_in"] == 600
    header, claims = await verify(issuer.url, answer.body["access_token"], audience="other-api")
    assert header["alg"] == "ES256"
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["admin", "editor", "viewer"]
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        pytest.param(basic("secureroute-dev", "wrong"), {}, id="bad-secret-basic"),
        pytest.param(basic("nobody", "x"), {}, id="unknown-client-basic"),
        pytest.param({}, {"client_id": "secureroute-dev", "client_secret": "wrong"}, id="bad-secret-post"),
        pytest.param({}, {"client_id": "secureroute-dev"}, id="missing-secret"),
        pytest.param({}, {}, id="no-client-at-all"),
        pytest.param({"Authorization": "Basic !!!"}, {}, id="garbage-basic"),
        pytest.param({"Authorization": "Bearer abc"}, {}, id="other-scheme"),
        pytest.param(basic("postman", "a-secret"), {}, id="public-client-with-secret"),
    ],
)
async def test_bad_client_credentials_are_invalid_client_401(
    issuer: RunningIssuer, post_token: PostToken, headers: dict[str, str], form: dict[str, str]
) -> None:
    answer = await post_token(issuer.url, {"grant_type": "client_credentials", **form}, headers=headers)
    assert answer.status == 401
    assert answer.body["error"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("form", "headers", "error"),
    [
        pytest.param({"grant_type": "password"}, DEV_CLIENT, "unsupported_grant_type", id="password-grant"),
        pytest.param(
            {"grant_type": "refresh_token"}, DEV_CLIENT, "unsupported_grant_type", id="refresh-grant"
        ),
        pytest.param({}, DEV_CLIENT, "invalid_request", id="no-grant-type"),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "root"}, DEV_CLIENT, "invalid_scope", id="bad-scope"
        ),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "  "}, DEV_CLIENT, "invalid_scope", id="blank-scope"
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": "postman"},
            {},
            "unauthorized_client",
            id="public-cc",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "ttl": "0"}, DEV_CLIENT, "invalid_request", id="ttl-0"
        ),
        pytest.param(
            {"grant_type": "client_credentials", "ttl": "999999999"},
            DEV_CLIENT,
            "invalid_request",
            id="ttl-huge",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "alg": "HS256"}, DEV_CLIENT, "invalid_request", id="hs256"
        ),
        pytest.param(
            {"grant_type": "client_credentials", "alg": "none"}, DEV_CLIENT, "invalid_request", id="alg-none"
        ),
        pytest.param(
            {"grant_type": "client_credentials", "sub": "a b"},
            DEV_CLIENT,
            "invalid_request",
            id="sub-with-space",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "roles": "<script>"},
            DEV_CLIENT,
            "invalid_request",
            id="bad-role",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_secret": "secureroute-dev-secret"},
            DEV_CLIENT,
            "invalid_request",
            id="two-auth-methods",
        ),
    ],
)
async def test_bad_requests_get_rfc6749_errors(
    issuer: RunningIssuer, post_token: PostToken, form: dict[str, str], headers: dict[str, str], error: str
) -> None:
    answer = await post_token(issuer.url, form, headers=headers)
    assert answer.status == 400, answer.body
    assert answer.body["error"] == error
    assert answer.body["error_description"]
    assert answer.headers["Cache-Control"] == "no-store"


async def test_a_parameter_sent_twice_is_refused(issuer: RunningIssuer, post_token: PostToken) -> None:
    form = [("grant_type", "client_credentials"), ("scope", "read"), ("scope", "write")]
    answer = await post_token(issuer.url, form, headers=DEV_CLIENT)
    assert answer.status == 400
    assert answer.body["error"] == "invalid_request"


async def test_json_bodies_are_refused(issuer: RunningIssuer, post_token: PostToken) -> None:
    answer = await post_token(
        issuer.url,
        '{"grant_type": "client_credentials"}',
        headers={**DEV_CLIENT, "Content-Type": "application/json"},
    )
    assert answer.status == 400
    assert answer.body["error"] == "invalid_request"


async def test_only_the_dev_client_may_choose_a_subject(
    start_issuer: Callable[..., Awaitable[RunningIssuer]], post_token: PostToken
) -> None:
    plain = ClientConfig(client_id="ci", client_secret="s3cret", grant_types=("client_credentials",))
    issuer = await start_issuer(clients=(plain,))
    answer = await post_token(
        issuer.url, {"grant_type": "client_credentials", "sub": "alice"}, headers=basic("ci", "s3cret")
    )
    assert answer.status == 400
    assert answer.body["error"] == "invalid_request"
    answer = await post_token(issuer.url, {"grant_type": "client_credentials"}, headers=basic("ci", "s3cret"))
    assert answer.status == 200
