"""Method policy: deny by default, public methods, scopes and roles per method or per service.

Run through ``Authenticator.authenticate`` with tokens from a real loopback issuer.
"""

from __future__ import annotations

from typing import Any

import pytest

import jwt_authn.config as config_module
from jwt_authn import (
    PUBLIC_GRPC_INFRA_METHODS,
    PermissionDenied,
    Policy,
    Requirement,
    Unauthenticated,
    challenge,
)


def _needs(*scopes: str, roles: tuple[str, ...] = ()) -> Requirement:
    return Requirement(scopes=frozenset(scopes), roles=frozenset(roles))


async def _outcome(authenticator: Any, method: str, token: str | None) -> str:
    try:
        principal = await authenticator.authenticate([f"Bearer {token}"] if token else [], method)
    except (Unauthenticated, PermissionDenied) as error:
        return error.reason
    return "public" if principal is None else "allowed"


async def test_every_method_needs_a_token_by_default(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=Policy())
    for method in ("/shop.v1.Orders/Get", "/anything.Else/At", "/grpc.health.v1.HealthX/Check"):
        assert await _outcome(authenticator, method, None) == "missing_token"
        assert await _outcome(authenticator, method, issuer.tokens.issue(now=clock.now)) == "allowed"


INFRA_CALLS = (
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)


@pytest.mark.parametrize(
    "policy",
    [Policy(), Policy(public_methods=("/shop.v1.Orders/Ping",))],
    ids=["default", "with_own_public_methods"],
)
async def test_grpc_infrastructure_is_public_by_default_even_beside_custom_public_methods(
    issuer: Any, make_authenticator: Any, issuer_config: Any, policy: Policy
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    assert set(PUBLIC_GRPC_INFRA_METHODS) <= set(policy.public_names)
    for method in INFRA_CALLS:
        assert await _outcome(authenticator, method, None) == "public"
    assert await _outcome(authenticator, "/shop.v1.Orders/Get", None) == "missing_token"


async def test_grpc_infrastructure_needs_a_token_when_explicitly_turned_off(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    policy = Policy(public_methods=("/shop.v1.Orders/Ping",), public_grpc_infra=False)
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    for method in INFRA_CALLS:
        assert await _outcome(authenticator, method, None) == "missing_token"
        assert await _outcome(authenticator, method, issuer.tokens.issue(now=clock.now)) == "allowed"
    assert await _outcome(authenticator, "/shop.v1.Orders/Ping", None) == "public"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("/shop.v1.Orders/Ping", "public"),
        ("/shop.v1.Orders/PingAll", "missing_token"),  # exact names, not prefixes
        ("/shop.v1.Orders/ping", "missing_token"),  # case-sensitive
        ("/shop.v1.Orders/Get", "missing_token"),
        ("/shop.v1.Catalog/List", "public"),  # the whole service
        ("/shop.v1.Catalog/Anything", "public"),
        ("/shop.v1.CatalogAdmin/List", "missing_token"),  # not a prefix of the service name
        ("/shop.v1.Catalog.Admin/List", "missing_token"),
        ("/shop.v2.Catalog/List", "missing_token"),
    ],
)
async def test_public_methods_are_exact_names_or_a_whole_service(
    issuer: Any, make_authenticator: Any, issuer_config: Any, method: str, expected: str
) -> None:
    policy = Policy(public_methods=("/shop.v1.Orders/Ping", "/shop.v1.Catalog/*"))
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    assert await _outcome(authenticator, method, None) == expected


# (id, token claims, method, expected)
SCOPE_AND_ROLE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("scope_string_has_it", {"scope": "read write"}, "/shop.v1.Orders/Create", "allowed"),
    ("scope_string_lacks_it", {"scope": "read"}, "/shop.v1.Orders/Create", "insufficient_scope"),
    ("scope_prefix_is_not_the_scope", {"scope": "write-all"}, "/shop.v1.Orders/Create", "insufficient_scope"),
    (
        "scope_words_are_space_separated",
        {"scope": "read,write"},
        "/shop.v1.Orders/Create",
        "insufficient_scope",
    ),
    ("scp_array_has_it", {"scp": ["write"]}, "/shop.v1.Orders/Create", "allowed"),
    ("scp_array_lacks_it", {"scp": ["read"]}, "/shop.v1.Orders/Create", "insufficient_scope"),
    ("no_scope_claim", {}, "/shop.v1.Orders/Create", "insufficient_scope"),
    ("service_scope_applies_to_every_method", {"scope": "read"}, "/shop.v1.Orders/Get", "allowed"),
    ("service_scope_missing", {"scope": "write"}, "/shop.v1.Orders/Get", "insufficient_scope"),
    ("method_entry_wins_over_service_entry", {"scope": "write"}, "/shop.v1.Orders/Create", "allowed"),
    ("all_scopes_are_needed", {"scope": "orders.admin"}, "/shop.v1.Orders/Purge", "insufficient_scope"),
    ("all_scopes_present", {"scope": "orders.admin orders.purge"}, "/shop.v1.Orders/Purge", "allowed"),
    ("role_present", {"scope": "read", "roles": ["auditor"]}, "/shop.v1.Audit/Read", "allowed"),
    ("role_missing", {"scope": "read", "roles": ["clerk"]}, "/shop.v1.Audit/Read", "insufficient_role"),
    ("role_claim_absent", {"scope": "read"}, "/shop.v1.Audit/Read", "insufficient_role"),
    ("no_requirement_any_valid_token", {}, "/shop.v1.Public/Anything", "allowed"),
]

POLICY = Policy(
    requirements={
        "/shop.v1.Orders/*": _needs("read"),
        "/shop.v1.Orders/Create": _needs("write"),
        "/shop.v1.Orders/Purge": _needs("orders.admin", "orders.purge"),
        "/shop.v1.Audit/Read": _needs("read", roles=("auditor",)),
    }
)


@pytest.mark.parametrize(
    ("claims", "method", "expected"),
    [c[1:] for c in SCOPE_AND_ROLE_CASES],
    ids=[c[0] for c in SCOPE_AND_ROLE_CASES],
)
async def test_scopes_and_roles_per_method_and_per_service(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    claims: dict[str, Any],
    method: str,
    expected: str,
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=POLICY)
    assert (
        await _outcome(authenticator, method, issuer.tokens.issue(now=clock.now, claims=claims)) == expected
    )


async def test_insufficient_scope_carries_an_rfc6750_challenge_with_the_needed_scopes(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=POLICY, realm="shop")
    token = issuer.tokens.issue(now=clock.now, scope="read")
    with pytest.raises(PermissionDenied) as caught:
        await authenticator.authenticate([f"Bearer {token}"], "/shop.v1.Orders/Purge")
    assert set(caught.value.required_scopes) == {"orders.admin", "orders.purge"}
    assert challenge(caught.value, realm="shop") == (
        'Bearer realm="shop", error="insufficient_scope", error_description="insufficient scope", '
        'scope="orders.admin orders.purge"'
    )


@pytest.mark.parametrize(
    ("roles_claim", "claims", "expected"),
    [
        ("realm_access.roles", {"realm_access": {"roles": ["auditor"]}}, "allowed"),
        ("realm_access.roles", {"realm_access": {"roles": ["clerk"]}}, "insufficient_role"),
        ("realm_access.roles", {"roles": ["auditor"]}, "insufficient_role"),  # top level is not the path
        ("realm_access.roles", {"realm_access": ["auditor"]}, "insufficient_role"),
        ("groups", {"groups": ["auditor"], "roles": ["clerk"]}, "allowed"),
        ("groups", {"roles": ["auditor"]}, "insufficient_role"),
    ],
)
async def test_roles_claim_is_configurable_including_nested_paths(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    roles_claim: str,
    claims: dict[str, Any],
    expected: str,
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, roles_claim=roles_claim), policy=POLICY)
    token = issuer.tokens.issue(now=clock.now, claims={"scope": "read", **claims})
    assert await _outcome(authenticator, "/shop.v1.Audit/Read", token) == expected


async def test_principal_carries_subject_scopes_roles_and_expiry(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=POLICY)
    token = issuer.tokens.issue(
        now=clock.now, sub="bob", scope="read write", roles=["auditor"], ttl_s=120, claims={"scp": ["extra"]}
    )
    principal = await authenticator.authenticate([f"Bearer {token}"], "/shop.v1.Audit/Read")
    assert principal is not None
    assert (principal.subject, principal.issuer) == ("bob", issuer.url)
    assert principal.scopes == {"read", "write", "extra"}
    assert principal.roles == {"auditor"}
    assert principal.expires_at == int(clock.now) + 120
    with pytest.raises(TypeError):
        principal.claims["sub"] = "mallory"  # type: ignore[index]


# (method, public, requirement) under MIXED: exact names, whole services, both kinds of entry.
MIXED = Policy(
    public_methods=("/shop.v1.Orders/Ping", "/shop.v1.Catalog/*"),
    requirements={"/shop.v1.Orders/*": _needs("read"), "/shop.v1.Orders/Create": _needs("write")},
)
MIXED_DECISIONS = [
    ("/shop.v1.Orders/Ping", True, _needs("read")),  # public wins; the service's entry is still reported
    ("/shop.v1.Catalog/List", True, None),
    ("/shop.v1.Orders/Create", False, _needs("write")),
    ("/shop.v1.Orders/Get", False, _needs("read")),
    ("/shop.v1.Other/Get", False, None),
]


def _fresh_mixed() -> Policy:
    return Policy(public_methods=MIXED.public_methods, requirements=MIXED.requirements)


def _decisions(policy: Policy) -> list[tuple[str, bool, Requirement | None]]:
    return [(method, *policy.access(method)[:2]) for method, _, _ in MIXED_DECISIONS]


def test_each_decision_is_the_same_when_asked_again_and_does_not_change_equality() -> None:
    policy = _fresh_mixed()
    for _ in range(2):  # the first round decides, the second reads what was remembered
        assert _decisions(policy) == MIXED_DECISIONS
        assert [(m, policy.is_public(m), policy.requirement_for(m)) for m, _, _ in MIXED_DECISIONS] == (
            MIXED_DECISIONS
        )
    assert policy == _fresh_mixed()


def test_methods_beyond_the_remembered_bound_are_still_decided_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "MAX_REMEMBERED_METHODS", 2)
    policy = _fresh_mixed()
    for _ in range(2):
        assert _decisions(policy) == MIXED_DECISIONS
    for number in range(100):  # an embedder passing names without end: memory stays bounded
        assert policy.access(f"/shop.v1.Orders/Call{number}")[:2] == (False, _needs("read"))
    assert len(policy.decisions) == 2


# Every combination of exact and wildcard entries on the public and the requirement side, for
# "/inv.v1.Inv/Delete": (public entry, requirement entry, whether Delete is public). The most
# specific entry decides; an exact entry on both sides is refused at construction.
_EXACT, _WILDCARD = "/inv.v1.Inv/Delete", "/inv.v1.Inv/*"
SPECIFICITY_CASES = [
    (None, None, False),
    (None, _EXACT, False),
    (None, _WILDCARD, False),
    (_EXACT, None, True),
    (_EXACT, _WILDCARD, True),  # the exact public entry beats the service's requirement
    (_WILDCARD, None, True),
    (_WILDCARD, _EXACT, False),  # the exact requirement beats the service's public wildcard
]


@pytest.mark.parametrize("case", SPECIFICITY_CASES, ids=lambda case: f"public={case[0]}-required={case[1]}")
async def test_the_most_specific_entry_decides_whether_a_method_is_public(
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    case: tuple[str | None, str | None, bool],
) -> None:
    public_entry, requirement_entry, public = case
    policy = Policy(
        public_methods=(public_entry,) if public_entry else (),
        requirements={requirement_entry: _needs("admin")} if requirement_entry else {},
    )
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    assert policy.access(_EXACT).public is public
    without_admin = issuer.tokens.issue(now=clock.now, scope="read")
    with_admin = issuer.tokens.issue(now=clock.now, scope="admin")
    if public:
        assert await _outcome(authenticator, _EXACT, None) == "public"
        return
    assert await _outcome(authenticator, _EXACT, None) == "missing_token"
    assert await _outcome(authenticator, _EXACT, with_admin) == "allowed"
    expected = "insufficient_scope" if requirement_entry else "allowed"
    assert await _outcome(authenticator, _EXACT, without_admin) == expected


def test_an_exact_entry_on_both_sides_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be public and have requirements"):
        Policy(public_methods=(_EXACT,), requirements={_EXACT: _needs("admin")})


def test_a_public_service_wildcard_keeps_its_other_methods_public() -> None:
    policy = Policy(public_methods=(_WILDCARD,), requirements={_EXACT: _needs("admin")})
    assert policy.access("/inv.v1.Inv/List").public
    assert not policy.access(_EXACT).public


# allow_missing_methods beside the other entries, for "/inv.v1.Inv/Get": the most specific entry
# decides. (entries, public, optional, requirement)
_GET = "/inv.v1.Inv/Get"
OPTIONAL_CASES = [
    (Policy(allow_missing_methods=(_GET,)), False, True, None),
    (Policy(allow_missing_methods=(_WILDCARD,)), False, True, None),
    (Policy(allow_missing_methods=(_WILDCARD,), public_methods=(_GET,)), True, False, None),
    (
        Policy(allow_missing_methods=(_WILDCARD,), requirements={_GET: _needs("admin")}),
        False,
        False,
        _needs("admin"),
    ),
    (Policy(allow_missing_methods=(_GET,), public_methods=(_WILDCARD,)), False, True, None),
    (Policy(allow_missing_methods=(_GET,), requirements={_WILDCARD: _needs("admin")}), False, True, None),
]


@pytest.mark.parametrize("case", OPTIONAL_CASES, ids=[str(i) for i in range(len(OPTIONAL_CASES))])
def test_allow_missing_entries_are_decided_by_the_most_specific_entry(
    case: tuple[Policy, bool, bool, Requirement | None],
) -> None:
    policy, public, optional, requirement = case
    access = policy.access(_GET)
    assert (access.public, access.optional, access.requirement, access.listed) == (
        public,
        optional,
        requirement,
        True,
    )


async def test_an_allow_missing_method_authenticates_a_token_when_one_is_sent(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    policy = Policy(allow_missing_methods=(_GET,))
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    assert await _outcome(authenticator, _GET, None) == "public"
    assert await _outcome(authenticator, _GET, issuer.tokens.issue(now=clock.now)) == "allowed"
    assert (
        await _outcome(authenticator, _GET, issuer.tokens.issue(now=clock.now, ttl_s=-600)) == "token_expired"
    )
