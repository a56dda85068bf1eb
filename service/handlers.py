"""The SecureRouteService handlers: Health answers anyone, SecureRoute answers a verified caller.

Authentication happened before the handler runs (jwt_authn's interceptor); SecureRoute only
reads the verified principal. Both echo a valid ``x-request-id`` as initial metadata and log
it, so one request can be followed from the facade to here. Tokens are never logged.

Usage:
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(SecureRouteServicer(), server)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import struct_pb2

from jwt_authn import current_principal
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = ["REQUEST_ID_METADATA", "SecureRouteServicer"]

REQUEST_ID_METADATA = "x-request-id"
# Printable ASCII, at most 128 characters: anything else could forge log lines.
_REQUEST_ID = re.compile(r"^[\x20-\x7e]{1,128}$")

_log = logging.getLogger(__name__)


async def _echo_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's request id ("-" when absent or unsafe), echoed back so callers see it arrived."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_METADATA and isinstance(value, str) and _REQUEST_ID.match(value):
            await context.send_initial_metadata(((REQUEST_ID_METADATA, value),))
            return value
    return "-"


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
        request_id = await _echo_request_id(context)
        _log.debug("Health request_id=%s", request_id)
        return secureroute_pb2.HealthResponse(message="Healthy")

    async def SecureRoute(
        self,
        request: secureroute_pb2.SecureRouteRequest,
        context: grpc.aio.ServicerContext[
            secureroute_pb2.SecureRouteRequest, secureroute_pb2.SecureRouteResponse
        ],
    ) -> secureroute_pb2.SecureRouteResponse:
        request_id = await _echo_request_id(context)
        principal = current_principal()
        _log.info("SecureRoute subject=%r request_id=%s", principal.subject, request_id)
        claims = struct_pb2.Struct()
        claims.update(_json_compatible(principal.claims))
        return secureroute_pb2.SecureRouteResponse(
            message="Super secret stuff", subject=principal.subject, claims=claims
        )
