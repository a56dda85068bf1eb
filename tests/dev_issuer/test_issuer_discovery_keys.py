"""Discovery, JWKS and the key state directory of the development issuer."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from issuer_helpers import DEV_CLIENT, PRIVATE_PARAMS, RunningIssuer

from dev_issuer import IssuerConfig, create_app
from dev_issuer.keys import KeyStoreError


async def test_discovery_document_names_every_endpoint(
    issuer: RunningIssuer, client: aiohttp.ClientSession
) -> None:
    async with client.get(f"{issuer.url}/.well-known/openid-configuration") as response:
        assert response.status == 200
        document = await response.json()
    assert document["issuer"] == issuer.url
    assert document["jwks_uri"] == f"{issuer.url}/jwks"
    assert document["token_endpoint"] == f"{issuer.url}/token"
    assert document["authorization_endpoint"] == f"{issuer.url}/authorize"
    assert set(document["grant_types_supported"]) == {"authorization_code", "client_credentials"}
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert set(document["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }


async def test_jwks_has_public_rs256_and_es256_keys_only(
    issuer: RunningIssuer, jwks_of: Callable[[str], Awaitable[dict[str, Any]]]
) -> None:
    keys = (await jwks_of(issuer.url))["keys"]
    assert {(k["kty"], k["alg"]) for k in keys} == {("RSA", "RS256"), ("EC", "ES256")}
    for key in keys:
        assert key["use"] == "sig"
        assert key["kid"]
        assert not PRIVATE_PARAMS & set(key), f"private parameter published in {key['kid']}"
    rsa = next(k for k in keys if k["kty"] == "RSA")
    assert len(rsa["n"]) >= 342  # 2048-bit modulus, base64url


async def test_state_is_owner_only(issuer: RunningIssuer) -> None:
    assert stat.S_IMODE(issuer.state_dir.stat().st_mode) == 0o700
    files = list(issuer.state_dir.iterdir())
    assert files, "no key file written"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_keys_and_tokens_survive_a_restart(
    start_issuer: Callable[..., Awaitable[RunningIssuer]],
    jwks_of: Callable[[str], Awaitable[dict[str, Any]]],
    post_token: Callable[..., Awaitable[Any]],
    verify: Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]],
) -> None:
    first = await start_issuer()
    kids_before = {k["kid"] for k in (await jwks_of(first.url))["keys"]}
    answer = await post_token(first.url, {"grant_type": "client_credentials"}, headers=DEV_CLIENT)
    token = answer.body["access_token"]
    await first.stop()

    second = await start_issuer()  # same state dir, new port
    assert {k["kid"] for k in (await jwks_of(second.url))["keys"]} == kids_before
    # A token minted before the restart still verifies against the restarted issuer's keys.
    _, claims = await verify(first.url, token, keys_from=second.url)
    assert claims["sub"] == "secureroute-dev"


def test_a_state_dir_others_can_read_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)  # noqa: S103 - the unsafe mode under test
    with pytest.raises(KeyStoreError, match="accessible by other users"):
        create_app(IssuerConfig(issuer_url="http://127.0.0.1:1", state_dir=shared))


def test_a_corrupt_state_file_fails_with_a_clear_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "keys.json").write_text("{not json")
    os.chmod(state / "keys.json", 0o600)
    with pytest.raises(KeyStoreError, match="delete it to start with fresh keys"):
        create_app(IssuerConfig(issuer_url="http://127.0.0.1:1", state_dir=state))


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1:1", "http://127.0.0.1:1/realm", "http://127.0.0.1:1?x=1", "not a url"],
)
def test_issuer_url_is_scheme_host_port(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="issuer_url"):
        IssuerConfig(issuer_url=url, state_dir=tmp_path)
