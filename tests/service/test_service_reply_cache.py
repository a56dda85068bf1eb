"""SecureRoute's reply cache: one reply per verified principal object, bounded."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from google.protobuf import struct_pb2

from jwt_authn import Principal
from service.handlers import ReplyCache


def _principal(subject: str) -> Principal:
    claims = MappingProxyType({"sub": subject, "roles": ["admin"], "realm_access": {"roles": ["x"]}})
    return Principal(subject=subject, issuer="https://issuer.test", claims=claims)


def test_the_same_principal_object_gets_the_same_reply_built_once() -> None:
    cache = ReplyCache()
    alice = _principal("alice")
    first = cache.reply_for(alice)
    assert cache.reply_for(alice) is first
    assert (first.message, first.subject) == ("Super secret stuff", "alice")
    assert first.claims["realm_access"]["roles"][0] == "x"
    assert len(cache) == 1


def test_an_equal_but_distinct_principal_gets_its_own_reply() -> None:
    cache = ReplyCache()
    first, second = _principal("alice"), _principal("alice")
    assert cache.reply_for(first) is not cache.reply_for(second)
    assert len(cache) == 2


def test_the_cache_is_bounded_and_evicts_the_oldest() -> None:
    cache = ReplyCache(max_entries=3)
    principals = [_principal(f"user-{n}") for n in range(5)]
    replies = [cache.reply_for(p) for p in principals]
    assert len(cache) == 3
    assert cache.reply_for(principals[-1]) is replies[-1]
    assert cache.reply_for(principals[0]) is not replies[0]  # evicted, built again


def test_claims_of_every_json_type_come_out_as_protobuf_struct_update_makes_them(
    claims_of_every_json_type: dict[str, Any],
) -> None:
    # protobuf's own Struct.update is the oracle for the handler's faster constructor-built Struct.
    claims = claims_of_every_json_type
    expected = struct_pb2.Struct()
    expected.update(claims)
    principal = Principal(subject="alice", issuer="https://issuer.test", claims=MappingProxyType(claims))
    reply = ReplyCache().reply_for(principal)
    assert reply.claims == expected
    assert reply.claims["admin"] is True and reply.claims["deleted"] is False  # bools stay bools
