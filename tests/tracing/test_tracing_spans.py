"""Span trees of the live service and facade, on loopback with a real issuer, into the in-memory exporter.

What each test proves: the RPC's server span is opened before the guard, so the guard's verdict
is on it and the key fetches an unknown kid causes are its children; a rejected call is traced
the same way without its subject; an incoming ``traceparent`` is the parent; the facade's
request, its gRPC call and the service's RPC are one trace; and in the one program, where the HTTP
routes call the service's code in-process, the guard's verdict is on the HTTP request's span.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from helpers import secureroute_stub
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from span_tree import Spans

from jwt_authn.testing import Fault, LoopbackIssuer, generate_key
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings

SECURE_ROUTE = "secureroute.v1.SecureRouteService/SecureRoute"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-01"


def _settings(issuer: LoopbackIssuer, *extra: str) -> ServiceSettings:
    argv = ["--listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute"]
    # No metrics port: 9464 may be anyone's on a shared machine.
    argv += ["--grace-period-s", "1", "--drain-delay-s", "0", "--metrics-listen", "off"]
    return ServiceSettings.load([*argv, *extra], environ={})


async def _started(
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]], settings: ServiceSettings
) -> SecureRouteServer:
    app = await start_service(settings)
    assert await app.authenticator.wait_ready(timeout_s=15.0)
    return app


async def _call(port: int, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = secureroute_stub(channel)
        try:
            await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK


def _no_secret(span: ReadableSpan, token: str) -> None:
    for value in (span.attributes or {}).values():
        assert token not in str(value) and "eyJ" not in str(value)


async def test_an_authenticated_call_is_one_server_span_with_the_verdict_under_the_callers_trace(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any
) -> None:
    app = await _started(start_service, _settings(issuer))
    token = issuer.tokens.issue(sub="alice", claims={"email": "alice@example.com"})
    code = await _call(app.port, (("authorization", f"Bearer {token}"), ("traceparent", TRACEPARENT)))
    assert code is grpc.StatusCode.OK
    (rpc,) = await spans.ended(SECURE_ROUTE)
    assert rpc.kind is SpanKind.SERVER
    assert (
        rpc.context.trace_id == TRACE_ID and rpc.parent is not None and rpc.parent.span_id == PARENT_SPAN_ID
    )
    attributes = dict(rpc.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.grpc.status_code"] == 0
    assert attributes["jwt_authn.result"] == "ok" and attributes["jwt_authn.reason"] == "ok"
    assert attributes["jwt_authn.issuer"] == issuer.url
    assert str(attributes["jwt_authn.key_id"]).startswith(issuer.kid("ES256") + "#jkt:")
    assert attributes["enduser.id"] == "alice"
    assert "alice@example.com" not in str(attributes)
    _no_secret(rpc, token)
    assert spans.children(rpc) == []  # a known key: no fetch under the call
    assert rpc.status.status_code is StatusCode.UNSET


async def test_the_first_key_load_is_a_refresh_span_over_its_discovery_and_jwks_fetches(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any
) -> None:
    await _started(start_service, _settings(issuer))
    (refresh,) = spans.named("jwt_authn refresh")
    assert refresh.parent is None  # the background load is a trace of its own
    fetches = sorted(spans.children(refresh), key=lambda span: span.start_time or 0)
    assert [(span.name, span.kind) for span in fetches] == [
        ("jwt_authn discovery", SpanKind.CLIENT),
        ("jwt_authn jwks", SpanKind.CLIENT),
    ]
    assert fetches[1].attributes is not None and fetches[1].attributes["url.full"] == issuer.jwks_uri
    assert all(span.attributes and span.attributes["jwt_authn.issuer"] == issuer.url for span in fetches)


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [(None, "missing_token"), ("Bearer not.a.token", "malformed_token"), ("expired", "token_expired")],
)
async def test_a_rejected_call_has_its_result_and_reason_and_no_subject(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any, authorization: str | None, reason: str
) -> None:
    app = await _started(start_service, _settings(issuer))
    if authorization == "expired":
        authorization = "Bearer " + issuer.tokens.issue(ttl_s=-120)
    metadata = (("authorization", authorization),) if authorization else ()
    assert await _call(app.port, metadata) is grpc.StatusCode.UNAUTHENTICATED
    (rpc,) = await spans.ended(SECURE_ROUTE)
    attributes = dict(rpc.attributes or {})
    assert attributes["jwt_authn.result"] == "unauthenticated"
    assert attributes["jwt_authn.reason"] == reason
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert "enduser.id" not in attributes
    assert ("jwt_authn.issuer" in attributes) is (reason == "token_expired")
    assert rpc.parent is None  # no traceparent: a new trace
    if authorization:
        _no_secret(rpc, authorization.removeprefix("Bearer "))


async def test_a_key_refresh_caused_by_a_call_is_a_child_of_that_calls_span(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any
) -> None:
    app = await _started(start_service, _settings(issuer, "--cooldown-s", "0.05"))
    await asyncio.sleep(0.1)  # past the cooldown since the first load
    issuer.rotate("ES256")  # signs with a kid the service has not seen yet
    spans.clear()
    token = issuer.tokens.issue()
    assert await _call(app.port, (("authorization", f"Bearer {token}"),)) is grpc.StatusCode.OK
    (rpc,) = await spans.ended(SECURE_ROUTE)
    (refresh,) = spans.children(rpc)
    assert refresh.name == "jwt_authn refresh" and refresh.context.trace_id == rpc.context.trace_id
    names = sorted(span.name for span in spans.children(refresh))
    assert names == ["jwt_authn discovery", "jwt_authn jwks"]
    assert rpc.attributes is not None and rpc.attributes["jwt_authn.key_id"] != ""
    assert str(rpc.attributes["jwt_authn.key_id"]).startswith(issuer.kid("ES256") + "#")


async def test_an_unknown_kid_whose_refresh_fails_records_the_failure_on_the_fetch_spans(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any
) -> None:
    app = await _started(start_service, _settings(issuer, "--cooldown-s", "0.05"))
    await asyncio.sleep(0.1)
    issuer.fault = Fault(status=503, only="jwks")
    spans.clear()
    stranger = issuer.tokens.issue(key=generate_key("ES256", kid="stranger"))
    code = await _call(app.port, (("authorization", f"Bearer {stranger}"),))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    (rpc,) = await spans.ended(SECURE_ROUTE)
    assert rpc.attributes is not None and rpc.attributes["jwt_authn.key_id"] == "stranger"
    (refresh,) = spans.children(rpc)
    (jwks,) = spans.named("jwt_authn jwks")
    assert jwks.status.status_code is StatusCode.ERROR and "HTTP 503" in (jwks.status.description or "")
    assert refresh.status.status_code is StatusCode.ERROR


async def test_an_unknown_method_gets_a_span_with_a_fixed_name(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any
) -> None:
    app = await _started(start_service, _settings(issuer))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        call = channel.unary_unary("/no.such.Service/Anything" + "x" * 100)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(b"", timeout=10)
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    (span,) = spans.named("grpc unknown method")
    assert span.status.status_code is StatusCode.ERROR
    assert "xxxx" not in str(span.attributes)


async def test_facade_request_its_grpc_call_and_the_services_rpc_are_one_trace(
    spans: Spans,
    issuer: LoopbackIssuer,
    start_service: Any,
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    app = await _started(start_service, _settings(issuer))
    facade = await start_facade(f"127.0.0.1:{app.port}")
    token = issuer.tokens.issue(sub="bob")
    headers = {"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT}
    async with http.get(f"{facade}/secure-route", headers=headers) as response:
        assert response.status == 200
    (request,) = spans.named("GET /secure-route")
    assert request.kind is SpanKind.SERVER and request.parent is not None
    assert request.parent.span_id == PARENT_SPAN_ID
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 200
    (client,) = spans.children(request)
    assert client.kind is SpanKind.CLIENT and client.name == f"/{SECURE_ROUTE}"
    (rpc,) = spans.children(client)
    assert rpc.name == SECURE_ROUTE and rpc.kind is SpanKind.SERVER
    assert {span.context.trace_id for span in (request, client, rpc)} == {TRACE_ID}
    assert rpc.attributes is not None and rpc.attributes["enduser.id"] == "bob"
    for span in (request, client, rpc):
        _no_secret(span, token)


async def test_a_facade_request_without_traceparent_starts_a_trace_and_a_404_is_traced(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any, start_facade: Any, http: aiohttp.ClientSession
) -> None:
    app = await _started(start_service, _settings(issuer))
    facade = await start_facade(f"127.0.0.1:{app.port}")
    async with http.get(f"{facade}/health") as response:
        assert response.status == 200
    async with http.get(f"{facade}/no/such/path") as response:
        assert response.status == 404
    (health,) = spans.named("GET /health")
    assert health.parent is None
    (missing,) = spans.named("GET")  # the path is the caller's text: never the span's name
    assert missing.attributes is not None and missing.attributes["http.response.status_code"] == 404
    assert "no/such" not in str(missing.attributes)


@pytest.mark.parametrize("facade_backend", ["in_process"])
async def test_in_the_one_program_the_http_span_carries_the_guards_verdict(
    spans: Spans, issuer: LoopbackIssuer, start_service: Any, start_facade: Any, http: aiohttp.ClientSession
) -> None:
    app = await _started(start_service, _settings(issuer))
    facade = await start_facade(f"127.0.0.1:{app.port}")
    token = issuer.tokens.issue(sub="carol")
    headers = {"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT}
    async with http.get(f"{facade}/secure-route", headers=headers) as response:
        assert response.status == 200
    async with http.get(f"{facade}/secure-route") as response:
        assert response.status == 401
    first, second = spans.named("GET /secure-route")
    assert first.context.trace_id == TRACE_ID and not spans.children(first)  # no RPC: no socket
    assert first.attributes is not None and first.attributes["enduser.id"] == "carol"
    assert first.attributes["jwt_authn.result"] == "ok"
    assert second.attributes is not None and second.attributes["jwt_authn.reason"] == "missing_token"
    assert second.attributes["http.response.status_code"] == 401
    for span in (first, second):
        _no_secret(span, token)
