"""The SecureRouteService handlers: Health answers anyone, SecureRoute answers a verified caller.

Authentication happened before the handler runs (jwt_authn's interceptor); SecureRoute only
reads the verified principal. Both echo the request id (read from ``x-request-id`` by
``service.call_pipeline``) as initial metadata; every log line carries it through the logging
filter, so one request can be followed from the facade to here. Tokens are never logged.

The domain code is ``SecureRouteCalls``: the servicer answers gRPC with it, and the one program's
HTTP routes call it directly (``http_facade.backend.ServiceCalls``), behind the same guard.

Usage:
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(SecureRouteServicer(), server)
    reply = await SecureRouteCalls().secure_route(current_principal())
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import struct_pb2

from jwt_authn import Principal, current_principal
from runtime.request_id import NO_REQUEST_ID, REQUEST_ID_METADATA, request_id_var
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = ["REQUEST_ID_METADATA", "SecureRouteCalls", "SecureRouteServicer", "secure_route_reply"]

_log = logging.getLogger(__name__)


async def _echo_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Echo the caller's request id (when it sent a safe one), so callers see it arrived."""
    request_id = request_id_var.get()
    if request_id != NO_REQUEST_ID:
        await context.send_initial_metadata(((REQUEST_ID_METADATA, request_id),))


def _value(claim: Any) -> struct_pb2.Value:
    """One claim as a protobuf ``Value``, built through constructors (done in C), which costs
    less than ``Struct.update``'s per-member Python."""
    if isinstance(claim, str):
        return struct_pb2.Value(string_value=claim)
    if isinstance(claim, bool):  # before int: a bool is an int
        return struct_pb2.Value(bool_value=claim)
    if isinstance(claim, int | float):
        return struct_pb2.Value(number_value=claim)
    if claim is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(claim, Mapping):
        return struct_pb2.Value(struct_value=_struct(claim))
    return struct_pb2.Value(list_value=struct_pb2.ListValue(values=[_value(item) for item in claim]))


def _struct(claims: Mapping[str, Any]) -> struct_pb2.Struct:
    """JSON claims (what a token's payload decodes to) as a protobuf ``Struct``."""
    return struct_pb2.Struct(fields={str(name): _value(claim) for name, claim in claims.items()})


SECURE_ROUTE_MESSAGE = "Super secret stuff"


def secure_route_reply(principal: Principal) -> secureroute_pb2.SecureRouteResponse:
    """SecureRoute's answer to ``principal``: built on every call, from the verified claims alone
    (no cache of handler output: the benchmark measures what an embedder's handler gets)."""
    return secureroute_pb2.SecureRouteResponse(
        message=SECURE_ROUTE_MESSAGE, subject=principal.subject, claims=_struct(principal.claims)
    )


_HEALTHY = secureroute_pb2.HealthResponse(message="Healthy")


class SecureRouteCalls:
    """SecureRouteService's answers, without a transport: the serving status, the reply for a principal."""

    async def health(self) -> secureroute_pb2.HealthResponse:
        return _HEALTHY

    async def secure_route(self, principal: Principal) -> secureroute_pb2.SecureRouteResponse:
        # DEBUG: the request metrics count every call; a line per call would cost more than the call.
        _log.debug("SecureRoute subject=%r", principal.subject)
        return secure_route_reply(principal)

    async def secure_message(self, principal: Principal) -> str:
        """The reply's message alone, when the caller wants no more (HTTP text/plain): the claims
        ``Struct`` would be built for nothing (a fifth of such a request's CPU, profiled)."""
        _log.debug("SecureRoute subject=%r", principal.subject)
        return SECURE_ROUTE_MESSAGE


_CALLS = SecureRouteCalls()


class SecureRouteServicer(secureroute_pb2_grpc.SecureRouteServiceServicer):
    """secureroute.v1.SecureRouteService."""

    async def Health(
        self,
        request: secureroute_pb2.HealthRequest,
        context: grpc.aio.ServicerContext[secureroute_pb2.HealthRequest, secureroute_pb2.HealthResponse],
    ) -> secureroute_pb2.HealthResponse:
        await _echo_request_id(context)
        return await _CALLS.health()

    async def SecureRoute(
        self,
        request: secureroute_pb2.SecureRouteRequest,
        context: grpc.aio.ServicerContext[
            secureroute_pb2.SecureRouteRequest, secureroute_pb2.SecureRouteResponse
        ],
    ) -> secureroute_pb2.SecureRouteResponse:
        await _echo_request_id(context)
        return await _CALLS.secure_route(current_principal())
