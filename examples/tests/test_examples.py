"""The runnable examples: ``python -m examples.greeter_async`` and ``python -m examples.greeter_sync``.

Each is started exactly as the guard's README says, as a real process, from a scratch working
directory (so it runs from the installed copy, not from a checkout), against a loopback issuer;
a grpc.aio client checks what is allowed and denied and what reflection lists, then SIGTERM
must stop it cleanly. These tests need only jwt-authn and jwt-authn-examples: CI also runs them
in a virtual environment holding nothing of the secureroute application.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from examples.greeter import greeter_pb2 as pb
from examples.greeter.service import FAREWELL_SCOPE, PING, SAY_GOODBYE, SAY_HELLO, SERVICE

WAIT_S = 15.0
AUDIENCE = "greeter"


@pytest.fixture(params=["examples.greeter_async", "examples.greeter_sync"])
async def greeter(
    request: pytest.FixtureRequest, issuer: Any, tmp_path: Path
) -> AsyncIterator[tuple[grpc.aio.Channel, asyncio.subprocess.Process]]:
    """The example running as ``python -m <module>``, and a channel to it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", request.param,
        "--issuer", issuer.url, "--audience", AUDIENCE, "--listen", "127.0.0.1:0",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        assert " listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _call(
    channel: grpc.aio.Channel, method: str, request: Any, response: Any
) -> Callable[..., Awaitable[Any]]:
    stub = channel.unary_unary(
        method, request_serializer=request.SerializeToString, response_deserializer=response.FromString
    )

    async def call(message: Any, token: str | None = None) -> Any:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return await asyncio.wait_for(stub(message, metadata=metadata), WAIT_S)

    return call


async def _status(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_example_allows_and_denies_by_its_policy_and_stops_on_sigterm(
    greeter: tuple[grpc.aio.Channel, asyncio.subprocess.Process], issuer: Any
) -> None:
    channel, process = greeter
    ping = _call(channel, PING, pb.PingRequest, pb.PingResponse)
    say_hello = _call(channel, SAY_HELLO, pb.SayHelloRequest, pb.SayHelloResponse)
    say_goodbye = _call(channel, SAY_GOODBYE, pb.SayGoodbyeRequest, pb.SayGoodbyeResponse)

    # Public: no token needed.
    assert (await ping(pb.PingRequest())).message == "pong"
    # Protected: no token, a token for someone else, then a good one.
    denied = await _status(say_hello(pb.SayHelloRequest(name="Bob")))
    assert denied.code() == grpc.StatusCode.UNAUTHENTICATED
    trailers = cast(tuple[tuple[str, str], ...], denied.trailing_metadata())
    assert ("www-authenticate", "Bearer") in tuple(trailers)
    other_audience = issuer.tokens.issue(aud="someone-else")
    denied = await _status(say_hello(pb.SayHelloRequest(name="Bob"), other_audience))
    assert denied.code() == grpc.StatusCode.UNAUTHENTICATED
    assert denied.details() == "audience mismatch"
    reply = await say_hello(pb.SayHelloRequest(name="Bob"), issuer.tokens.issue(sub="alice", aud=AUDIENCE))
    assert (reply.message, reply.caller) == ("Hello, Bob!", "alice")
    # Scoped: a valid token without the scope is forbidden, with it allowed.
    forbidden = await _status(
        say_goodbye(pb.SayGoodbyeRequest(), issuer.tokens.issue(aud=AUDIENCE, scope="x"))
    )
    assert forbidden.code() == grpc.StatusCode.PERMISSION_DENIED
    farewell = issuer.tokens.issue(sub="alice", aud=AUDIENCE, scope=f"openid {FAREWELL_SCOPE}")
    assert (await say_goodbye(pb.SayGoodbyeRequest(), farewell)).message == "Goodbye, alice!"
    # Unknown methods stay UNIMPLEMENTED, token or not.
    unknown = await _status(
        _call(channel, f"/{SERVICE}/Shout", pb.PingRequest, pb.PingResponse)(pb.PingRequest())
    )
    assert unknown.code() == grpc.StatusCode.UNIMPLEMENTED

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), WAIT_S) == 0


async def test_example_serves_reflection_without_a_token(
    greeter: tuple[grpc.aio.Channel, asyncio.subprocess.Process],
) -> None:
    channel, _ = greeter
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = stub.ServerReflectionInfo(iter([request]))
    reply = cast(Any, await asyncio.wait_for(replies.read(), WAIT_S))
    listed = {service.name for service in reply.list_services_response.service}
    assert listed == {SERVICE, "grpc.reflection.v1alpha.ServerReflection"}
