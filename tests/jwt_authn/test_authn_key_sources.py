"""Where keys come from, and how strictly a fetched document is read.

Key sources: OIDC discovery (the default), an explicit ``jwks_uri``, a ``jwks_file``, an inline
``jwks``. Strict fetches: only a 200 with one JSON object under the size cap, no redirects,
each bad key skipped, private and symmetric keys dropped, and a document with no usable key
is a failed refresh. Every failing case is followed by recovery once the issuer is healthy
again, which shows the fault (and nothing else) made it fail.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from authn_helpers import outcome
from jwcrypto import jwk

from jwt_authn import Authenticator, AuthnConfig
from jwt_authn.keys import KeySet
from jwt_authn.testing import Fault, LoopbackIssuer, generate_key


async def test_discovery_finds_the_jwks_and_loads_it(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


async def test_discovery_document_naming_another_issuer_fails_the_refresh(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, wait_until: Any
) -> None:
    issuer.discovery_issuer = issuer.url + "/other"
    authenticator = await make_authenticator(issuer_config(issuer), ready=False)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: key_set.refresh_failures >= 1, "a failed refresh")
    assert issuer.jwks_fetches == 0  # the JWKS it names is never fetched
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "key_set_unavailable"
    issuer.discovery_issuer = None
    assert await authenticator.wait_ready(10)


async def test_explicit_jwks_uri_skips_discovery(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, jwks_uri=issuer.jwks_uri))
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (0, 1)
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


async def test_inline_jwks_needs_no_fetch(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, jwks=issuer.public_jwks()))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (0, 0)


async def test_jwks_file_is_loaded_and_reloaded_when_it_changes(
    *, issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, tmp_path: Any, wait_until: Any
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.public_jwks()))
    authenticator = await make_authenticator(issuer_config(issuer, jwks_file=str(path)))
    key_set = authenticator.key_sets[issuer.url]
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"
    issuer.rotate("ES256")
    rotated = issuer.tokens.issue(now=clock.now)
    # Published at the issuer but not in the file (the on-demand re-read finds the file unchanged).
    assert await outcome(authenticator, rotated) == "unknown_kid"
    path.write_text(json.dumps(issuer.public_jwks()))
    # The file is polled (every second): the change is picked up without any request.
    await wait_until(
        lambda: issuer.kid("ES256") in (key_set.key_set.kids if key_set.key_set else frozenset()),
        "the file to be re-read",
        timeout_s=5,
    )
    assert await outcome(authenticator, rotated) == "accepted"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (0, 0)


async def test_missing_jwks_file_is_a_failed_refresh(
    make_authenticator: Any, issuer_config: Any, tmp_path: Any, wait_until: Any
) -> None:
    authenticator = await make_authenticator(
        issuer_config("https://idp.example.com", jwks_file=str(tmp_path / "absent.json")), ready=False
    )
    key_set = authenticator.key_sets["https://idp.example.com"]
    await wait_until(lambda: key_set.refresh_failures >= 1, "a failed refresh")
    assert not key_set.ever_loaded


def _padded_jwks(issuer: LoopbackIssuer, size: int) -> bytes:
    body = json.dumps(issuer.public_jwks()).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def _private_and_symmetric_only(issuer: LoopbackIssuer) -> bytes:
    private = json.loads(issuer.tokens.keys["ES256"].export_private())
    secret = jwk.JWK.generate(kty="oct", size=256, kid="oct-key").export(as_dict=True)
    return json.dumps({"keys": [private, secret]}).encode()


# (id, the fault at the issuer, extra IssuerConfig settings). Each one fails the first load.
FETCH_FAULTS: list[tuple[str, Callable[[LoopbackIssuer], Fault], dict[str, Any]]] = [
    ("discovery_http_500", lambda i: Fault(status=500, only="discovery"), {}),
    ("jwks_http_404", lambda i: Fault(status=404, only="jwks"), {}),
    # A valid JWKS with another 2xx status: only a 200 is a JWKS answer.
    (
        "jwks_http_203_with_a_valid_body",
        lambda i: Fault(status=203, body=json.dumps(i.public_jwks()).encode(), only="jwks"),
        {},
    ),
    (
        "jwks_html_page",
        lambda i: Fault(body=b"<html><body>Sign in</body></html>", content_type="text/html", only="jwks"),
        {},
    ),
    ("jwks_truncated_json", lambda i: Fault(body=json.dumps(i.public_jwks()).encode()[:40], only="jwks"), {}),
    ("jwks_json_array", lambda i: Fault(body=json.dumps(i.public_jwks()["keys"]).encode(), only="jwks"), {}),
    ("jwks_json_string", lambda i: Fault(body=b'"keys"', only="jwks"), {}),
    ("jwks_keys_not_a_list", lambda i: Fault(body=b'{"keys": {}}', only="jwks"), {}),
    ("jwks_duplicate_members", lambda i: Fault(body=b'{"keys": [], "keys": []}', only="jwks"), {}),
    ("jwks_no_keys", lambda i: Fault(body=b'{"keys": []}', only="jwks"), {}),
    (
        "jwks_only_private_and_symmetric_keys",
        lambda i: Fault(body=_private_and_symmetric_only(i), only="jwks"),
        {},
    ),
    (
        "jwks_over_the_size_cap",
        lambda i: Fault(body=_padded_jwks(i, 5000), only="jwks"),
        {"max_response_bytes": 4096},
    ),
    (
        "discovery_not_json",
        lambda i: Fault(body=b"issuer=me", content_type="text/plain", only="discovery"),
        {},
    ),
    (
        "discovery_without_jwks_uri",
        lambda i: Fault(body=json.dumps({"issuer": i.url}).encode(), only="discovery"),
        {},
    ),
    (
        "discovery_jwks_uri_plain_http_off_loopback",
        lambda i: Fault(
            body=json.dumps({"issuer": i.url, "jwks_uri": "http://idp.example.com/jwks"}).encode(),
            only="discovery",
        ),
        {},
    ),
]


@pytest.mark.parametrize(
    ("make_fault", "settings"), [f[1:] for f in FETCH_FAULTS], ids=[f[0] for f in FETCH_FAULTS]
)
async def test_strict_fetch_refuses_the_document_then_recovers(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    wait_until: Any,
    make_fault: Callable[[LoopbackIssuer], Fault],
    settings: dict[str, Any],
) -> None:
    issuer.fault = make_fault(issuer)
    authenticator = await make_authenticator(issuer_config(issuer, **settings), ready=False)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: key_set.refresh_failures >= 1, "a failed refresh")
    assert not key_set.ever_loaded
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "key_set_unavailable"
    # The issuer heals: the background retry loads the keys, no restart needed.
    issuer.fault = Fault()
    assert await authenticator.wait_ready(10)
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


async def test_document_within_the_size_cap_loads(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    # The control for jwks_over_the_size_cap: the same padding, just under the cap.
    issuer.fault = Fault(body=_padded_jwks(issuer, 4096), only="jwks")
    authenticator = await make_authenticator(issuer_config(issuer, max_response_bytes=4096))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


def _chunked(body: bytes, chunk_bytes: int, pause_s: float = 0.005) -> Any:
    """A handler sending ``body`` with chunked encoding (no Content-Length), a chunk at a time."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), chunk_bytes):
            await response.write(body[start : start + chunk_bytes])
            await asyncio.sleep(pause_s)  # each chunk arrives on its own
        await response.write_eof()
        return response

    return handler


async def test_jwks_arriving_in_several_chunks_is_read_to_the_end(
    issuer: Any, make_authenticator: Any, issuer_config: Any, serve_routes: Any, clock: Any
) -> None:
    base = await serve_routes({"/jwks": _chunked(json.dumps(issuer.public_jwks()).encode(), 40)})
    authenticator = await make_authenticator(issuer_config(issuer, jwks_uri=f"{base}/jwks"))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


@pytest.mark.parametrize(
    ("size", "loads"), [(4096, True), (4097, False)], ids=["at_the_cap", "one_byte_over"]
)
async def test_chunked_body_is_capped_while_reading(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    serve_routes: Any,
    wait_until: Any,
    clock: Any,
    size: int,
    loads: bool,
) -> None:
    # No Content-Length: the cap must hold while reading. One byte over is refused even though
    # the document is valid JSON (so only the cap can refuse it).
    base = await serve_routes({"/jwks": _chunked(_padded_jwks(issuer, size), 1000)})
    config = issuer_config(issuer, jwks_uri=f"{base}/jwks", max_response_bytes=4096)
    authenticator = await make_authenticator(config, ready=False)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: key_set.ever_loaded or key_set.refresh_failures >= 1, "the first load")
    assert key_set.ever_loaded is loads
    expected = "accepted" if loads else "key_set_unavailable"
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == expected


async def test_redirect_is_not_followed(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    serve_routes: Any,
    wait_until: Any,
    clock: Any,
) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(issuer.jwks_uri)

    base = await serve_routes({"/jwks": redirect})
    authenticator = await make_authenticator(issuer_config(issuer, jwks_uri=f"{base}/jwks"), ready=False)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: key_set.refresh_failures >= 2, "two failed refreshes")
    assert issuer.jwks_fetches == 0
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "key_set_unavailable"


async def test_bad_keys_are_skipped_while_good_keys_load(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    good = issuer.tokens.keys["ES256"]
    weak_rsa = jwk.JWK.generate(kty="RSA", size=1024, kid="weak-rsa", alg="RS256")
    private_ec = generate_key("ES256", kid="private-ec")
    entries: list[Any] = [
        42,
        "not a key",
        {"kty": "RSA", "kid": "bad-rsa", "n": "!!", "e": "AQAB"},
        {"kty": "EC", "kid": "bad-ec", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "kid": "ecdh-curve", "crv": "X25519", "x": "AAAA"},
        {"kty": "XYZ", "kid": "unknown-kty"},
        {**good.export_public(as_dict=True), "kid": "enc-use", "use": "enc"},
        {**good.export_public(as_dict=True), "kid": "no-verify-op", "key_ops": ["encrypt"]},
        {**good.export_public(as_dict=True), "kid": "hs-alg", "alg": "HS256"},
        {**weak_rsa.export_public(as_dict=True)},
        json.loads(private_ec.export_private()),
        jwk.JWK.generate(kty="oct", size=256, kid="oct-key").export(as_dict=True),
        good.export_public(as_dict=True),
    ]
    issuer.fault = Fault(body=json.dumps({"keys": entries}).encode(), only="jwks")
    authenticator = await make_authenticator(issuer_config(issuer))
    loaded = authenticator.key_sets[issuer.url].key_set
    assert loaded is not None
    assert loaded.kids == {issuer.kid("ES256")}
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"
    # Keys from dropped entries verify nothing, even when the token's signature is theirs.
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, key=private_ec)) == "unknown_kid"
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, alg="RS256", key=weak_rsa)) == (
        "unknown_kid"
    )


async def test_max_keys_bounds_the_keys_kept_from_one_document(
    issuer: Any, make_authenticator: Any, issuer_config: Any, publish_key: Any, clock: Any
) -> None:
    extra = [generate_key("ES256") for _ in range(3)]
    for key in extra:
        publish_key(issuer, key)
    authenticator = await make_authenticator(issuer_config(issuer, max_keys=2))
    loaded = authenticator.key_sets[issuer.url].key_set
    assert loaded is not None
    assert len(loaded.keys) == 2
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, key=extra[-1])) == "unknown_kid"


class _EverythingIsLoopback(AbstractResolver):
    """Resolves every host name to 127.0.0.1, so "remote" URLs stay on loopback in tests."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(("allow_insecure_http", "loads"), [(False, False), (True, True)])
async def test_jwks_uri_from_discovery_must_be_https_off_loopback(
    issuer: Any, issuer_config: Any, wait_until: Any, allow_insecure_http: bool, loads: bool
) -> None:
    # The discovery document sends us to plain http on a non-loopback name (which the resolver
    # maps to our issuer, so the fetch would work): refused unless insecure http is allowed.
    remote_jwks = f"http://idp.example.com:{issuer.port}/jwks"
    issuer.fault = Fault(
        body=json.dumps({"issuer": issuer.url, "jwks_uri": remote_jwks}).encode(), only="discovery"
    )
    config = AuthnConfig(issuers=(issuer_config(issuer, allow_insecure_http=allow_insecure_http),))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=_EverythingIsLoopback())
    ) as session:
        authenticator = Authenticator(config, session=session)
        await authenticator.start()
        try:
            key_set = authenticator.key_sets[issuer.url]
            await wait_until(lambda: key_set.ever_loaded or key_set.refresh_failures >= 1, "the first load")
            assert key_set.ever_loaded is loads
            assert issuer.jwks_fetches == (1 if loads else 0)
        finally:
            await authenticator.close()


def test_key_set_candidates_answer_by_kid_and_alg_and_remember_only_real_pairs() -> None:
    rsa_key, ec_key = generate_key("RS256", kid="rsa-1"), generate_key("ES256", kid="ec-1")
    key_set = KeySet.from_document(
        {"keys": [rsa_key.export_public(as_dict=True), ec_key.export_public(as_dict=True)]}, max_keys=8
    )
    for _ in range(2):  # the second pass answers from what the first one remembered
        assert [k.kid for k in key_set.candidates("rsa-1", "RS256", limit=4)] == ["rsa-1"]
        assert key_set.candidates("rsa-1", "PS256", limit=4) == ()  # the key names its alg: RS256
        assert key_set.candidates("rsa-1", "ES256", limit=4) == ()
        assert [k.kid for k in key_set.candidates(None, "ES256", limit=4)] == ["ec-1"]
        assert key_set.candidates(None, "RS256", limit=0) == ()
    # Junk kids and algs (what an attacker controls) are answered but never remembered.
    for n in range(500):
        assert key_set.candidates(f"junk-{n}", "RS256", limit=4) == ()
        assert key_set.candidates("rsa-1", f"XS{n}", limit=4) == ()
    assert len(key_set._fitting) == 5  # the five real (kid, alg) pairs asked above
