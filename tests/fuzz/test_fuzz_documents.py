"""Untrusted documents: strict JSON, the JWKS parser, and discovery/JWKS fetches over HTTP.

Arbitrary input may only produce the documented errors: ``StrictJSONError`` (a ValueError)
from the JSON parser, ``ValueError`` from ``KeySet.from_document``, ``KeySourceError`` from
a fetch. The fetches go to a real LoopbackIssuer answering arbitrary statuses and bodies.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest
from fuzz_strategies import discovery_documents, json_texts_with_pairs, json_values, jwk_entries
from hypothesis import assume, example, given
from hypothesis import strategies as st

from jwt_authn.config import IssuerConfig
from jwt_authn.keys import KeySet
from jwt_authn.sources import DiscoveryKeySource, Fetched, KeySourceError, get_json
from jwt_authn.strict_json import StrictJSONError, loads_object
from jwt_authn.testing import Fault, LoopbackIssuer, generate_key

module_loop = pytest.mark.asyncio(loop_scope="module")

REAL_KEYS = [generate_key(alg).export_public(as_dict=True) for alg in ("ES256", "EdDSA", "ES384")]


# Strict JSON -------------------------------------------------------------------------------


@given(data=st.binary(max_size=300) | st.text(max_size=300) | json_values.map(json.dumps))
@example(data=b"\xef\xbb\xbf{}")
@example(data="[" * 5000)
@example(data='{"a":1e999}')
@example(data='{"a":' + "9" * 100 + "}")
def test_loads_object_yields_an_object_or_strict_json_error(data: bytes | str) -> None:
    try:
        value = loads_object(data, what="doc")
    except StrictJSONError:
        return
    assert isinstance(value, dict)


@given(text_and_pairs=json_texts_with_pairs())
def test_loads_object_refuses_duplicates_and_non_finite_numbers(
    text_and_pairs: tuple[str, list[Any]],
) -> None:
    text, pairs = text_and_pairs
    keys = [key for key, _ in pairs]
    try:
        value = loads_object(text, what="doc")
    except StrictJSONError:
        return
    assert len(set(keys)) == len(keys), "a duplicate member was accepted"
    assert all(_finite(v) for _, v in pairs), "NaN or Infinity was accepted"
    assert value == json.loads(text)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


@pytest.mark.parametrize(
    "data",
    [b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32-le")],
    ids=["utf8-bom", "utf16", "utf32-le"],
)
def test_only_utf8_without_bom_is_json(data: bytes) -> None:
    with pytest.raises(StrictJSONError):
        loads_object(data, what="doc")


# The JWKS parser ---------------------------------------------------------------------------


@given(document=json_values, max_keys=st.integers(min_value=1, max_value=8))
def test_key_set_from_arbitrary_json(document: Any, max_keys: int) -> None:
    assume(isinstance(document, dict))
    try:
        key_set = KeySet.from_document(document, max_keys=max_keys)
    except ValueError:
        assert not isinstance(document.get("keys"), list)
        return
    assert len(key_set.keys) <= max_keys


@given(entries=st.lists(jwk_entries(REAL_KEYS), max_size=6), max_keys=st.integers(min_value=1, max_value=8))
@example(entries=[{"kty": "oct", "k": "AAAA"}, REAL_KEYS[0]], max_keys=4)
@example(entries=[{**REAL_KEYS[0], "d": "AAAA"}], max_keys=4)
def test_key_set_from_key_shaped_entries(entries: list[Any], max_keys: int) -> None:
    key_set = KeySet.from_document({"keys": entries}, max_keys=max_keys)
    assert len(key_set.keys) <= max_keys
    for key in key_set.keys:
        # Only public asymmetric keys survive (a JWKS is public; oct would allow HMAC confusion).
        assert key.kty in ("RSA", "EC", "OKP")
        assert not key.key.has_private


@pytest.mark.parametrize(
    "entry",
    [
        {**REAL_KEYS[0], "alg": ["ES256"]},
        {**REAL_KEYS[0], "crv": ["P-256"]},
        {**REAL_KEYS[1], "crv": {"name": "Ed25519"}},
    ],
    ids=["alg-list", "crv-list", "crv-object"],
)
def test_unhashable_alg_or_crv_is_skipped_not_raised(entry: dict[str, Any]) -> None:
    """RFC 7517 §5: a key that cannot be used is skipped; the good key beside it still loads."""
    key_set = KeySet.from_document({"keys": [entry, REAL_KEYS[2]]}, max_keys=4)
    assert [key.crv for key in key_set.keys] == ["P-384"]


# Fetches over HTTP -------------------------------------------------------------------------

_statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 302, 400, 404, 429, 500, 502, 503])
_content_types = st.sampled_from(["application/json", "text/html", "application/octet-stream", "text/plain"])
_bodies = (
    st.binary(max_size=2_000)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.lists(jwk_entries(REAL_KEYS), max_size=4).map(lambda keys: json.dumps({"keys": keys}).encode())
)


@pytest.fixture(scope="module")
def fetch_config(fuzz_issuer: LoopbackIssuer) -> IssuerConfig:
    return IssuerConfig(
        issuer=fuzz_issuer.url, audiences=("secureroute",), fetch_timeout_s=2.0, max_response_bytes=4096
    )


_answers = st.tuples(_statuses, _bodies, _content_types) | st.none()  # None: the real JWKS


@module_loop
@given(
    answer=_answers,
    cache_control=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
@example(answer=(200, b"{" + b" " * 5000 + b"}", "application/json"), cache_control="")
@example(answer=(200, b"", "application/json"), cache_control="")
@example(answer=None, cache_control="max-age=99999999999, no-store")
@example(answer=None, cache_control='max-age="60"')
async def test_get_json_on_arbitrary_answers(
    answer: tuple[int, bytes, str] | None,
    cache_control: str,
    fuzz_issuer: LoopbackIssuer,
    fuzz_session: aiohttp.ClientSession,
    fetch_config: IssuerConfig,
) -> None:
    if answer is not None:
        status, body, content_type = answer
        fuzz_issuer.fault = Fault(status=status, body=body, content_type=content_type, only="jwks")
    fuzz_issuer.cache_control = cache_control or None
    try:
        fetched = await get_json(fuzz_session, fuzz_issuer.jwks_uri, fetch_config, "jwks")
    except KeySourceError:
        assert answer is not None, "the real JWKS must load whatever its Cache-Control says"
        return
    finally:
        fuzz_issuer.fault, fuzz_issuer.cache_control = Fault(), None
    assert isinstance(fetched, Fetched) and isinstance(fetched.document, dict)
    if answer is not None:
        assert answer[0] == 200 and len(answer[1]) <= fetch_config.max_response_bytes
    assert fetched.max_age_s is None or fetched.max_age_s >= 0


@module_loop
@given(data=st.data())
async def test_discovery_on_arbitrary_documents(
    data: st.DataObject,
    fuzz_issuer: LoopbackIssuer,
    fuzz_session: aiohttp.ClientSession,
    fetch_config: IssuerConfig,
) -> None:
    document = data.draw(discovery_documents(fuzz_issuer.url, fuzz_issuer.jwks_uri), label="discovery")
    fuzz_issuer.fault = Fault(body=json.dumps(document).encode(), only="discovery")
    source = DiscoveryKeySource(fetch_config, lambda: fuzz_session)
    try:
        fetched = await source.fetch()
    except KeySourceError:
        return
    finally:
        fuzz_issuer.fault = Fault()
    # Accepted only when the document names exactly our issuer and a fetchable loopback JWKS.
    assert document["issuer"] == fuzz_issuer.url
    assert isinstance(fetched.document.get("keys"), list)
