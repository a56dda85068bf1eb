"""Both RPCs over a real grpc.aio client, authentication outcomes, UNIMPLEMENTED, and x-request-id."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import json_format
from helpers import nested, secureroute_stub, trailer

from jwt_authn.testing import LoopbackIssuer, generate_key
from secureroute.v1 import secureroute_pb2


async def test_health_answers_without_credentials(channel: grpc.aio.Channel) -> None:
    reply = await secureroute_stub(channel).Health(secureroute_pb2.HealthRequest())
    assert reply.message == "Healthy"


async def test_secure_route_answers_the_verified_caller(
    channel: grpc.aio.Channel, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue(sub="alice", scope="read", claims={"tenant": {"id": 7, "tags": ["a"]}})
    reply = await secureroute_stub(channel).SecureRoute(
        secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
    )
    assert reply.message == "Super secret stuff"
    assert reply.subject == "alice"
    claims = json_format.MessageToDict(reply.claims)
    assert claims["sub"] == "alice"
    assert claims["aud"] == "secureroute"
    assert claims["iss"] == issuer.url
    assert claims["tenant"] == {"id": 7, "tags": ["a"]}


async def test_secure_route_without_token_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await secureroute_stub(channel).SecureRoute(secureroute_pb2.SecureRouteRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    challenge = trailer(caught.value, "www-authenticate")
    assert challenge is not None and challenge.startswith("Bearer")
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no credentials were sent


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda issuer: "garbage", id="not-a-jwt"),
        pytest.param(lambda issuer: issuer.tokens.issue(ttl_s=-600), id="expired"),
        pytest.param(lambda issuer: issuer.tokens.issue(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda issuer: issuer.tokens.issue(key=generate_key("ES256")), id="unknown-key"),
    ],
)
async def test_secure_route_with_bad_token_is_unauthenticated(
    channel: grpc.aio.Channel, issuer: LoopbackIssuer, make_token: object
) -> None:
    token = make_token(issuer)  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await secureroute_stub(channel).SecureRoute(
            secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert 'error="invalid_token"' in (trailer(caught.value, "www-authenticate") or "")
    assert token not in (caught.value.details() or "")


@pytest.mark.parametrize(
    "method",
    ["/secureroute.v1.SecureRouteService/Nope", "/no.such.Service/Method", "/grpc.health.v1.Health/Nope"],
)
async def test_unknown_methods_are_unimplemented(channel: grpc.aio.Channel, method: str) -> None:
    call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_request_id_is_echoed_as_initial_metadata(channel: grpc.aio.Channel) -> None:
    call = secureroute_stub(channel).Health(
        secureroute_pb2.HealthRequest(), metadata=[("x-request-id", "req-123")]
    )
    await call
    assert ("x-request-id", "req-123") in list(await call.initial_metadata())


async def test_unsafe_request_id_is_not_echoed(channel: grpc.aio.Channel) -> None:
    call = secureroute_stub(channel).Health(
        secureroute_pb2.HealthRequest(), metadata=[("x-request-id", "x" * 500)]
    )
    await call
    assert "x-request-id" not in dict(await call.initial_metadata())


async def test_claims_nested_to_the_limit_come_back_whole(
    channel: grpc.aio.Channel, issuer: LoopbackIssuer
) -> None:
    # 15 objects under the payload: 16 levels, max_claims_depth's default.
    token = issuer.tokens.issue(claims={"deep": nested(15)})
    reply = await secureroute_stub(channel).SecureRoute(
        secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
    )
    assert json_format.MessageToDict(reply.claims)["deep"] == nested(15)


@pytest.mark.parametrize("levels", [16, 40, 200])
async def test_claims_nested_past_the_limit_are_unauthenticated_not_unknown(
    channel: grpc.aio.Channel, issuer: LoopbackIssuer, levels: int
) -> None:
    # 40 levels was past protobuf's Struct decode depth: UNKNOWN, quoting the decoder's error.
    token = issuer.tokens.issue(claims={"deep": nested(levels)})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await secureroute_stub(channel).SecureRoute(
            secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "malformed claims"


@pytest.mark.parametrize("with_dpop_entry", [False, True], ids=["bearer_alone", "bearer_with_dpop_entry"])
@pytest.mark.parametrize(
    "cnf", [{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"x5t#S256": "bwcK0"}]
)
async def test_a_bound_token_sent_as_bearer_is_refused(
    channel: grpc.aio.Channel, issuer: LoopbackIssuer, cnf: dict[str, str], with_dpop_entry: bool
) -> None:
    # RFC 9449 §7.2: a DPoP- (or certificate-) bound token must never work as a plain bearer token.
    token = issuer.tokens.issue(sub="alice", claims={"cnf": cnf})
    metadata = [("authorization", f"Bearer {token}")]
    if with_dpop_entry:
        metadata.append(("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await secureroute_stub(channel).SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    challenge = trailer(raised.value, "www-authenticate") or ""
    assert 'error="invalid_token"' in challenge
    assert token not in challenge
