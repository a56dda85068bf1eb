"""The SecureRouteService handlers: Health answers anyone, SecureRoute answers a verified caller.

Authentication happened before the handler runs (jwt_authn's interceptor); SecureRoute only
reads the verified principal. Both echo the request id (read from ``x-request-id`` by
``service.interceptor``) as initial metadata; every log line carries it through the logging
filter, so one request can be followed from the facade to here. Tokens are never logged.

Usage:
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(SecureRouteServicer(), server)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import struct_pb2

from jwt_authn import current_principal
from secureroute.request_id import NO_REQUEST_ID, REQUEST_ID_METADATA, request_id_var
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = ["REQUEST_ID_METADATA", "SecureRouteServicer"]

_log = logging.getLogger(__name__)


async def _echo_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Echo the caller's request id (when it sent a safe one), so callers see it arrived."""
    request_id = request_id_var.get()
    if request_id != NO_REQUEST_ID:
        await context.send_initial_metadata(((REQUEST_ID_METADATA, request_id),))


def _json_compatible(value: Any) -> Any:
    """Claims as plain dicts and lists, which ``Struct.update`` accepts (not read-only mappings)."""
    if isinstance(value, Mapping):
        return {str(k): _json_compatible(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_compatible(v) for v in value]
    return value


class SecureRouteServicer(secureroute_pb2_grpc.SecureRouteServiceServicer):
    """secureroute.v1.SecureRouteService."""

    async def Health(
        self,
        request: secureroute_pb2.HealthRequest,
        context: grpc.aio.ServicerContext[secureroute_pb2.HealthRequest, secureroute_pb2.HealthResponse],
    ) -> secureroute_pb2.HealthResponse:
        await _echo_request_id(context)
        _log.debug("Health")
        return secureroute_pb2.HealthResponse(message="Healthy")

    async def SecureRoute(
        self,
        request: secureroute_pb2.SecureRouteRequest,
        context: grpc.aio.ServicerContext[
            secureroute_pb2.SecureRouteRequest, secureroute_pb2.SecureRouteResponse
        ],
    ) -> secureroute_pb2.SecureRouteResponse:
        await _echo_request_id(context)
        principal = current_principal()
        _log.info("SecureRoute subject=%r", principal.subject)
        claims = struct_pb2.Struct()
        claims.update(_json_compatible(principal.claims))
        return secureroute_pb2.SecureRouteResponse(
            message="Super secret stuff", subject=principal.subject, claims=claims
        )
