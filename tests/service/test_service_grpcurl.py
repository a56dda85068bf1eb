"""The real grpcurl binary against the live service, through server reflection only (no .proto files)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Protocol

from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer


class Completed(Protocol):
    returncode: int
    stdout: str
    stderr: str


Grpcurl = Callable[..., Awaitable[Completed]]


def _address(service: SecureRouteServer) -> str:
    return f"127.0.0.1:{service.port}"


async def test_list_shows_our_service_health_and_reflection(
    service: SecureRouteServer, grpcurl: Grpcurl
) -> None:
    result = await grpcurl("-plaintext", _address(service), "list")
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {
        "secureroute.v1.SecureRouteService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services


async def test_describe_shows_both_rpcs_and_the_messages(
    service: SecureRouteServer, grpcurl: Grpcurl
) -> None:
    result = await grpcurl("-plaintext", _address(service), "describe", "secureroute.v1.SecureRouteService")
    assert result.returncode == 0, result.stderr
    assert "rpc Health" in result.stdout
    assert "rpc SecureRoute" in result.stdout
    message = await grpcurl("-plaintext", _address(service), "describe", "secureroute.v1.SecureRouteResponse")
    assert message.returncode == 0, message.stderr
    assert "google.protobuf.Struct claims" in message.stdout


async def test_health_rpc_and_standard_health_check(service: SecureRouteServer, grpcurl: Grpcurl) -> None:
    result = await grpcurl("-plaintext", _address(service), "secureroute.v1.SecureRouteService/Health")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": "Healthy"}
    check = await grpcurl(
        "-plaintext", "-d", '{"service": "secureroute.v1.SecureRouteService"}', _address(service),
        "grpc.health.v1.Health/Check",
    )  # fmt: skip
    assert json.loads(check.stdout) == {"status": "SERVING"}


async def test_secure_route_with_token(
    service: SecureRouteServer, issuer: LoopbackIssuer, grpcurl: Grpcurl
) -> None:
    token = issuer.tokens.issue(sub="bob")
    result = await grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {token}", _address(service),
        "secureroute.v1.SecureRouteService/SecureRoute",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["message"] == "Super secret stuff"
    assert reply["subject"] == "bob"
    assert reply["claims"]["sub"] == "bob"


async def test_secure_route_without_token(service: SecureRouteServer, grpcurl: Grpcurl) -> None:
    result = await grpcurl("-plaintext", _address(service), "secureroute.v1.SecureRouteService/SecureRoute")
    assert result.returncode != 0
    assert "Unauthenticated" in result.stderr
