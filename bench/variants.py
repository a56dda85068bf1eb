"""``python -m service`` in three bench-only variants: the guard off, tracing on, a timer around each piece.

``guard-off`` runs the same server (``service.server.build_server``: the same servicer, metrics,
request ids, limits and options) with jwt_authn's interceptor replaced by one that lets every call
through as one fixed principal, read from ``--principal-token`` (decoded, not verified: this is a
benchmark's server, never a deployment). Against the real service it measures what the guard
costs, with the same traffic on both sides.

``one-guard-off`` runs the one program (``python -m secureroute``) with both guards replaced the
same way: the gRPC one as above, and jwt_authn's aiohttp middleware by one that sets the same
principal (the HTTP requests still carry their tokens). Against the one program it measures what
the guard costs over HTTP.

``traced`` runs the same server with tracing on as ``OTEL_*`` would turn it on (the SDK, its batch
processor, every span encoded as OTLP protobuf), the encoded bytes dropped instead of sent: the
benchmark has no collector, and sends nothing off the machine. Against the service it measures
what traces cost when on (off, nothing is added: README "Traces").

``timed`` wraps each piece of the SecureRoute request path with ``perf_counter_ns`` (pieces nest, so
a row includes the timers of the rows inside it). ``SIGUSR1`` writes the totals since the last
signal to ``--timings-file`` (JSON ``{"serial": n, "calls": SecureRoute calls, "ns": {piece: total}}``)
and starts counting afresh, so a driver can bracket one load run. In a tight loop the CPU caches
hold nothing but the loop; inside the service the same code runs between gRPC core, asyncio and
the other calls, and costs several times more: this shows by how much, piece by piece.

Usage:
    python -m bench.variants guard-off --principal-token eyJ... --listen 127.0.0.1:50051 --issuer ...
    python -m bench.variants one-guard-off --principal-token eyJ... --http-listen 127.0.0.1:3000 ...
    python -m bench.variants traced --listen 127.0.0.1:50051 --issuer ...
    python -m bench.variants timed --timings-file /tmp/t.json --listen 127.0.0.1:50051 --issuer ...
    kill -USR1 <pid>     # then read /tmp/t.json
"""

from __future__ import annotations

import base64
import collections
import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from types import MappingProxyType
from typing import Any

import grpc
from aiohttp import web

import http_facade.routes as routes_module
import jwt_authn.authenticator as authenticator_module
import service.handlers as handlers_module
import service.server as server_module
from jwt_authn import Principal
from jwt_authn.authenticator import Authenticator
from jwt_authn.config import Policy
from jwt_authn.principal import principal_var
from jwt_authn.token_cache import TokenCache
from runtime.tracing import enable_tracing
from secureroute.program import main as one_main
from service.__main__ import main as service_main

__all__ = ["AUTHENTICATE", "PIECES", "SIGNATURE", "main"]

#: Labels the report quotes.
AUTHENTICATE = "authenticate (all of the rows below but the reply)"
SIGNATURE = "signature check"
#: (label, owner, attribute): what is timed, in request-path order. Module-level functions are
#: patched where their caller looks them up (once per call).
PIECES: tuple[tuple[str, Any, str], ...] = (
    (AUTHENTICATE, Authenticator, "authenticate"),
    ("policy decision for the method", Policy, "access"),
    ("extract the bearer token", authenticator_module, "extract_bearer"),
    (
        "verify the call's credential (cache lookup, or the full check)",
        Authenticator,
        "_verify_authorization",
    ),
    ("token cache key (BLAKE2b)", TokenCache, "digest"),
    ("token cache lookup", TokenCache, "get"),
    ("parse the token (base64url, strict JSON)", authenticator_module, "parse_token"),
    (SIGNATURE, authenticator_module, "verify_signature"),
    ("claims check (exp, nbf, iss, aud...)", authenticator_module, "check_claims"),
    ("build the principal", authenticator_module, "_principal"),
    ("token cache insert", TokenCache, "put"),
    ("SecureRoute reply (claims Struct)", handlers_module, "secure_route_reply"),
)
_Totals = tuple[collections.Counter[str], collections.Counter[str]]  # (ns by label, calls by label)


def _timed(function: Callable[..., Any], label: str, totals: _Totals) -> Callable[..., Any]:
    nanoseconds, calls = totals
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            started = perf_counter_ns()
            try:
                return await function(*args, **kwargs)
            finally:
                nanoseconds[label] += perf_counter_ns() - started
                calls[label] += 1

        return timed_coroutine

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            nanoseconds[label] += perf_counter_ns() - started
            calls[label] += 1

    return timed


def _install_timers(path: Path) -> None:
    """Wrap every piece of ``PIECES`` (a piece the code no longer has stays at zero) and dump on SIGUSR1."""
    totals: _Totals = (collections.Counter(), collections.Counter())
    for label, owner, name in PIECES:
        if not hasattr(owner, name):
            continue
        current = inspect.getattr_static(owner, name)
        if isinstance(current, staticmethod):
            setattr(owner, name, staticmethod(_timed(current.__func__, label, totals)))
        else:
            setattr(owner, name, _timed(getattr(owner, name), label, totals))
    serial = 0

    def dump(signum: int, frame: Any) -> None:
        nonlocal serial
        serial += 1
        report = {"serial": serial, "calls": totals[1][AUTHENTICATE], "ns": dict(totals[0])}
        totals[0].clear()
        totals[1].clear()
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(report), encoding="utf-8")
        os.replace(partial, path)  # the reader never sees half a file

    signal.signal(signal.SIGUSR1, dump)


class _GuardOff:
    """Where the guard stood (``AsyncAuthInterceptor.guard``, which the service's interceptor asks
    once per call): every call goes through as one fixed principal, set as the guard sets it."""

    def __init__(self, principal: Principal) -> None:
        self._principal = principal

    async def guard(self, handler: Any, details: grpc.HandlerCallDetails, continuation: Any = None) -> Any:
        principal_var.set(self._principal)
        return handler


def _guard_off_middleware(principal: Principal) -> Any:
    """Where jwt_authn's aiohttp middleware stood: the principal set as it sets it, nothing checked."""

    @web.middleware
    async def pass_through(request: web.Request, handler: Any) -> web.StreamResponse:
        reset = principal_var.set(principal)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            principal_var.reset(reset)

    return pass_through


def _unverified_principal(token: str) -> Principal:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return Principal(subject=claims["sub"], issuer=claims["iss"], claims=MappingProxyType(claims))


def _trace_into_the_void() -> None:
    """Tracing on, each batch of spans encoded as the OTLP exporter encodes it, then dropped."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: PLC0415
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class EncodeAndDrop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(EncodeAndDrop()))
    enable_tracing(provider)  # configure_tracing, called by the program, keeps it


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: python -m bench.variants (guard-off --principal-token T | one-guard-off --principal-token T"
        " | timed --timings-file F | traced) …"
    )
    if args[:1] == ["traced"]:
        _trace_into_the_void()
        service_main(args[1:])
        return
    if len(args) < 3 or (args[0], args[1]) not in {
        ("guard-off", "--principal-token"),
        ("one-guard-off", "--principal-token"),
        ("timed", "--timings-file"),
    }:
        raise SystemExit(usage)
    if args[0] == "timed":
        _install_timers(Path(args[2]))
    else:
        principal = _unverified_principal(args[2])
        # build_server looks the name up when it builds the server: patching the module is enough.
        setattr(server_module, "AsyncAuthInterceptor", lambda authenticator: _GuardOff(principal))  # noqa: B010
        if args[0] == "one-guard-off":
            # add_local_routes looks the name up when it builds the app, as build_server does.
            off = _guard_off_middleware(principal)
            setattr(routes_module, "authn_middleware", lambda authenticator, reject: off)  # noqa: B010
            one_main(args[3:])
            return
    service_main(args[3:])


if __name__ == "__main__":
    main()
