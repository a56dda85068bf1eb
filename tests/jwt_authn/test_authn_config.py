"""Configuration is frozen, keyword-only and validated at construction, naming the bad setting."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwt_authn import AuthnConfig, IssuerConfig, Policy, Requirement
from jwt_authn.config import ASYMMETRIC_ALGORITHMS

ISS = "https://idp.example.com"


def _issuer(**changes: Any) -> IssuerConfig:
    return IssuerConfig(**{"issuer": ISS, "audiences": ("api",), **changes})


# (id, construction that must fail, the setting its message must name)
INVALID: list[tuple[str, Callable[[], object], str]] = [
    ("issuer_empty", lambda: _issuer(issuer=""), "issuer"),
    ("issuer_with_spaces", lambda: _issuer(issuer=f" {ISS}"), "issuer"),
    ("issuer_not_a_url_for_discovery", lambda: _issuer(issuer="idp.example.com"), "issuer"),
    ("issuer_ftp_for_discovery", lambda: _issuer(issuer="ftp://idp.example.com"), "issuer"),
    ("issuer_plain_http_off_loopback", lambda: _issuer(issuer="http://idp.example.com"), "issuer"),
    ("jwks_uri_plain_http_off_loopback", lambda: _issuer(jwks_uri="http://idp.example.com/jwks"), "jwks_uri"),
    ("two_key_sources", lambda: _issuer(jwks_uri=f"{ISS}/jwks", jwks={"keys": []}), "jwks"),
    ("inline_jwks_without_keys_list", lambda: _issuer(jwks={"keys": {}}), "jwks"),
    ("no_audience", lambda: _issuer(audiences=()), "audiences"),
    ("empty_audience", lambda: _issuer(audiences=("",)), "audiences"),
    ("bare_string_audience", lambda: _issuer(audiences="api"), "audiences"),
    ("no_algorithms", lambda: _issuer(algorithms=()), "algorithms"),
    *[
        (f"algorithm_{alg}", lambda alg=alg: _issuer(algorithms=("RS256", alg)), "algorithms")
        for alg in ("HS256", "HS384", "HS512", "none", "None", "NONE", "rs256", "RSA-OAEP")
    ],
    ("leeway_negative", lambda: _issuer(leeway_s=-1), "leeway_s"),
    ("leeway_over_five_minutes", lambda: _issuer(leeway_s=301), "leeway_s"),
    ("roles_claim_empty_segment", lambda: _issuer(roles_claim="realm_access..roles"), "roles_claim"),
    ("roles_claim_with_space", lambda: _issuer(roles_claim="my roles"), "roles_claim"),
    *[
        (f"{name}_zero", lambda name=name: _issuer(**{name: 0}), name)
        for name in (
            "fetch_timeout_s",
            "refresh_interval_s",
            "min_refresh_interval_s",
            "max_refresh_interval_s",
            "cooldown_s",
            "max_staleness_s",
            "retry_initial_backoff_s",
            "retry_max_backoff_s",
        )
    ],
    (
        "min_refresh_over_max",
        lambda: _issuer(min_refresh_interval_s=10, max_refresh_interval_s=5),
        "min_refresh_interval_s",
    ),
    ("max_response_bytes_tiny", lambda: _issuer(max_response_bytes=100), "max_response_bytes"),
    ("max_keys_zero", lambda: _issuer(max_keys=0), "max_keys"),
    ("policy_method_without_slash", lambda: Policy(public_methods=("shop.v1.Orders/Get",)), "public_methods"),
    ("policy_method_without_name", lambda: Policy(public_methods=("/shop.v1.Orders/",)), "public_methods"),
    ("policy_prefix_wildcard", lambda: Policy(public_methods=("/shop.v1.Orders/Get*",)), "public_methods"),
    (
        "policy_requirement_bad_name",
        lambda: Policy(requirements={"Orders.Get": Requirement()}),
        "requirements",
    ),
    (
        "policy_public_and_required",
        lambda: Policy(public_methods=("/a.B/C",), requirements={"/a.B/C": Requirement()}),
        "requirements",
    ),
    (
        "allow_missing_bad_name",
        lambda: Policy(allow_missing_methods=("Orders.Get",)),
        "allow_missing_methods",
    ),
    (
        "allow_missing_and_public",
        lambda: Policy(public_methods=("/a.B/C",), allow_missing_methods=("/a.B/C",)),
        "allow_missing_methods",
    ),
    (
        "allow_missing_and_public_infra",
        lambda: Policy(allow_missing_methods=("/grpc.health.v1.Health/*",)),
        "allow_missing_methods",
    ),
    (
        "allow_missing_and_required",
        lambda: Policy(allow_missing_methods=("/a.B/*",), requirements={"/a.B/*": Requirement()}),
        "allow_missing_methods",
    ),
    ("policy_require_listed_not_a_bool", lambda: Policy(require_listed="yes"), "require_listed"),
    # Two scopes in one string could never be met (a token's scopes are split on spaces).
    ("scopes_two_in_one_string", lambda: Requirement(scopes={"inventory.admin inventory.write"}), "scopes"),
    ("scopes_empty", lambda: Requirement(scopes={""}), "scopes"),
    ("scopes_with_a_quote", lambda: Requirement(scopes={'a"b'}), "scopes"),
    ("scopes_bare_string", lambda: Requirement(scopes="admin"), "scopes"),
    ("no_issuers", lambda: AuthnConfig(issuers=()), "issuers"),
    ("same_issuer_twice", lambda: AuthnConfig(issuers=(_issuer(), _issuer())), "issuers"),
    (
        "max_token_bytes_tiny",
        lambda: AuthnConfig(issuers=(_issuer(),), max_token_bytes=100),
        "max_token_bytes",
    ),
    (
        "max_token_bytes_huge",
        lambda: AuthnConfig(issuers=(_issuer(),), max_token_bytes=1 << 20),
        "max_token_bytes",
    ),
    (
        "token_cache_size_negative",
        lambda: AuthnConfig(issuers=(_issuer(),), token_cache_size=-1),
        "token_cache_size",
    ),
    (
        "max_keys_without_kid_zero",
        lambda: AuthnConfig(issuers=(_issuer(),), max_keys_without_kid=0),
        "max_keys_without_kid",
    ),
    (
        "negative_kid_cache_size_negative",
        lambda: AuthnConfig(issuers=(_issuer(),), negative_kid_cache_size=-1),
        "negative_kid_cache_size",
    ),
    ("realm_with_quote", lambda: AuthnConfig(issuers=(_issuer(),), realm='a"b'), "realm"),
]


@pytest.mark.parametrize(("build", "setting"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_setting_fails_at_construction_naming_the_setting(
    build: Callable[[], object], setting: str
) -> None:
    with pytest.raises(ValueError, match=f"^{setting}: "):
        build()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:9000/realms/x", "http://[::1]:1234", "http://127.5.6.7", ISS],
)
def test_plain_http_is_allowed_on_loopback_only(url: str) -> None:
    assert _issuer(issuer=url).issuer == url
    assert _issuer(jwks_uri=f"{url}/jwks").jwks_uri == f"{url}/jwks"


def test_allow_insecure_http_permits_plain_http_off_loopback() -> None:
    config = _issuer(
        issuer="http://idp.internal", jwks_uri="http://idp.internal/jwks", allow_insecure_http=True
    )
    assert config.jwks_uri == "http://idp.internal/jwks"


def test_an_issuer_with_its_own_key_source_need_not_be_a_fetchable_url() -> None:
    assert _issuer(issuer="urn:example:issuer", jwks={"keys": []}).issuer == "urn:example:issuer"


def test_allow_any_audience_must_be_explicit() -> None:
    assert _issuer(audiences=(), allow_any_audience=True).allow_any_audience


def test_configs_are_frozen_and_keyword_only() -> None:
    config = _issuer()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.leeway_s = 600  # type: ignore[misc]
    with pytest.raises(TypeError):
        IssuerConfig(ISS, ("api",))  # type: ignore[misc]
    policy = Policy(requirements={"/a.B/C": Requirement(scopes=frozenset({"x"}))})
    with pytest.raises(TypeError):
        policy.requirements["/a.B/D"] = Requirement()  # type: ignore[index]


def test_defaults_are_the_documented_ones() -> None:
    config = AuthnConfig(issuers=(_issuer(),))
    assert (config.max_token_bytes, config.token_cache_size, config.max_keys_without_kid) == (8192, 10_000, 4)
    issuer = config.issuers[0]
    assert (issuer.leeway_s, issuer.fetch_timeout_s, issuer.cooldown_s, issuer.refresh_interval_s) == (
        30,
        5,
        30,
        600,
    )
    assert "HS256" not in issuer.algorithms and "none" not in issuer.algorithms
    assert issuer.discovery_url == f"{ISS}/.well-known/openid-configuration"


# --- collections never accept a bare string ---------------------------------------------------
# ``audiences=("api")`` is the string "api" (a missing comma), and ``aud in "api"`` would accept
# the audiences "a", "p" and "pi": the includes() bug of the Express original.

#: A valid instance of each public config class, and a valid value for each collection field.
_BASES: dict[type, dict[str, Any]] = {
    IssuerConfig: {"issuer": ISS, "audiences": ("api",)},
    Requirement: {},
    Policy: {},
    AuthnConfig: {"issuers": (IssuerConfig(issuer=ISS, audiences=("api",)),)},
}
_VALID_ITEMS: dict[str, st.SearchStrategy[Any]] = {
    "audiences": st.text(min_size=1),
    "algorithms": st.sampled_from(sorted(ASYMMETRIC_ALGORITHMS)),
    "required_claims": st.text(min_size=1),
    # RFC 6749 §3.3 scope-tokens: a space, a quote or a backslash is refused (see INVALID).
    "scopes": st.from_regex(r"[\x21\x23-\x5B\x5D-\x7E]+", fullmatch=True),
    "roles": st.text(),
    "public_methods": st.from_regex(r"/[a-z]{1,8}\.v1\.[A-Z][a-z]{0,8}/(\*|[A-Z][a-z]{0,8})", fullmatch=True),
    "allow_missing_methods": st.from_regex(
        r"/[a-z]{1,8}\.v1\.[A-Z][a-z]{0,8}/(\*|[A-Z][a-z]{0,8})", fullmatch=True
    ),
    "issuers": st.just(_BASES[AuthnConfig]["issuers"][0]),
}


def _collection_fields() -> list[tuple[type, str, type]]:
    """Every tuple- or frozenset-typed field of the public config, found by introspection, so a
    collection field added later is covered without touching this test."""
    found = []
    for cls in _BASES:
        for name, hint in typing.get_type_hints(cls).items():
            origin = typing.get_origin(hint)
            if origin in (tuple, frozenset) and not name.startswith("_"):
                found.append((cls, name, origin))
    return found


COLLECTION_FIELDS = _collection_fields()


def test_every_collection_field_is_covered() -> None:
    assert {name for _, name, _ in COLLECTION_FIELDS} == set(_VALID_ITEMS)


@pytest.mark.parametrize(("cls", "name"), [(c, n) for c, n, _ in COLLECTION_FIELDS], ids=str)
@given(text=st.text())
def test_a_bare_string_is_refused_by_every_collection_field(cls: type, name: str, text: str) -> None:
    with pytest.raises(ValueError, match="must be a collection of"):
        cls(**{**_BASES[cls], name: text})


@pytest.mark.parametrize(("cls", "name", "origin"), COLLECTION_FIELDS, ids=str)
@given(data=st.data())
def test_any_collection_of_valid_items_is_accepted_as_the_declared_type(
    cls: type, name: str, origin: type, data: st.DataObject
) -> None:
    items = data.draw(st.lists(_VALID_ITEMS[name], min_size=1, max_size=3, unique=True))
    container = data.draw(st.sampled_from([list, tuple, iter]))
    value = getattr(cls(**{**_BASES[cls], name: container(items)}), name)
    assert type(value) is origin
    assert set(value) == set(items)


@pytest.mark.parametrize(
    ("build", "setting"),
    [
        (lambda: _issuer(audiences="greeter"), "audiences"),
        (lambda: _issuer(audiences=("api", 7)), "audiences"),
        (lambda: _issuer(algorithms="RS256"), "algorithms"),
        (lambda: Requirement(scopes="read"), "scopes"),
        (lambda: Policy(public_methods="/a.B/C"), "public_methods"),
        (lambda: Policy(requirements={"/a.B/C": "read"}), "requirements"),
        (lambda: AuthnConfig(issuers=_issuer()), "issuers"),
        (lambda: AuthnConfig(issuers=(_issuer(),), policy="/a.B/C"), "policy"),
        (lambda: _issuer(cooldown_s="30"), "cooldown_s"),
    ],
    ids=["audience_str", "audience_int", "algorithms_str", "scopes_str", "public_str", "requirement_str",
         "issuers_bare", "policy_str", "number_as_text"],
)  # fmt: skip
def test_wrong_types_fail_at_construction_naming_the_setting(
    build: Callable[[], object], setting: str
) -> None:
    with pytest.raises(ValueError, match=f"^{setting}: "):
        build()


def test_the_missing_comma_audience_never_becomes_a_substring_match() -> None:
    with pytest.raises(ValueError, match="one-element tuple needs a trailing comma"):
        _issuer(audiences=("greeter"))  # the very mistake under test
