"""SecureRoute's reply: the verified principal's subject and claims, built from the claims alone."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from google.protobuf import struct_pb2

from jwt_authn import Principal
from service.handlers import secure_route_reply


def test_the_reply_carries_the_message_subject_and_nested_claims() -> None:
    claims = MappingProxyType({"sub": "alice", "roles": ["admin"], "realm_access": {"roles": ["x"]}})
    reply = secure_route_reply(Principal(subject="alice", issuer="https://issuer.test", claims=claims))
    assert (reply.message, reply.subject) == ("Super secret stuff", "alice")
    assert reply.claims["realm_access"]["roles"][0] == "x"


def test_claims_of_every_json_type_come_out_as_protobuf_struct_update_makes_them(
    claims_of_every_json_type: dict[str, Any],
) -> None:
    # protobuf's own Struct.update is the oracle for the handler's faster constructor-built Struct.
    claims = claims_of_every_json_type
    expected = struct_pb2.Struct()
    expected.update(claims)
    principal = Principal(subject="alice", issuer="https://issuer.test", claims=MappingProxyType(claims))
    reply = secure_route_reply(principal)
    assert reply.claims == expected
    assert reply.claims["admin"] is True and reply.claims["deleted"] is False  # bools stay bools
