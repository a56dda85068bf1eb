"""Every pattern that vets a value matches all of it: a trailing newline ('$' alone allows one)
is refused wherever an id, a host name, a method name or a claim path is checked."""

from __future__ import annotations

import pytest

from jwt_authn import IssuerConfig, Policy
from runtime.listen import parse_listen
from runtime.request_id import is_safe_request_id


def test_request_ids_with_a_trailing_newline_are_not_safe() -> None:
    assert is_safe_request_id("abc-123")
    assert not is_safe_request_id("abc-123\n")


def test_listen_host_names_with_a_trailing_newline_are_refused() -> None:
    assert str(parse_listen("localhost:50051")) == "localhost:50051"
    with pytest.raises(ValueError, match="host name"):
        parse_listen("localhost\n:50051")


def test_policy_method_names_with_a_trailing_newline_are_refused() -> None:
    Policy(public_methods=("/shop.v1.Orders/Get",))
    with pytest.raises(ValueError, match=r"^public_methods: "):
        Policy(public_methods=("/shop.v1.Orders/Get\n",))


def test_roles_claim_paths_with_a_trailing_newline_are_refused() -> None:
    IssuerConfig(issuer="https://idp.example/", audiences=("a",), roles_claim="realm_access.roles")
    with pytest.raises(ValueError, match="roles_claim"):
        IssuerConfig(issuer="https://idp.example/", audiences=("a",), roles_claim="roles\n")
