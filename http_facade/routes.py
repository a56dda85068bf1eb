"""The facade's endpoints: ``GET /health`` and ``GET /secure-route`` (HEAD too), each one RPC.

Two ways to answer them, one behaviour (tests/facade runs its suite against both):

- ``add_routes``: remote, each request one call of the service over gRPC (the split deployment);
  the service's guard decides, its status is mapped by ``http_facade.status_map``.
- ``add_local_routes``: the one program. jwt_authn's own aiohttp middleware guards the routes on
  the gRPC server's ``Authenticator``, each route named (``@operation``) for the RPC it stands
  for, so one Policy decides both transports; the handlers call the service's domain code
  (``LocalBackend.calls``) directly, within the same deadline, and refusals are rendered as the
  remote facade renders the service's.

Usage:
    add_routes(app)
    add_local_routes(app, LocalBackend(calls, authenticator), timeout_s=5.0)
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from http_facade.backend import BACKEND_KEY, LocalBackend
from http_facade.request_id import REQUEST_ID_KEY
from http_facade.responses import render, render_error, render_rpc_error, render_status, wants_json
from jwt_authn import (
    DPOP_HTM_METADATA,
    DPOP_HTU_METADATA,
    DPOP_METADATA,
    authn_middleware,
    current_principal,
    operation,
)
from runtime.deadlines import Deadlines
from secureroute.v1 import secureroute_pb2

__all__ = [
    "LOCAL_BACKEND_KEY",
    "PUBLIC_BASE_URL_KEY",
    "add_local_routes",
    "add_routes",
    "malformed_authorization_middleware",
]

LOCAL_BACKEND_KEY = web.AppKey("local_backend", LocalBackend)

_SERVICE = secureroute_pb2.DESCRIPTOR.services_by_name["SecureRouteService"].full_name
HEALTH_METHOD = f"/{_SERVICE}/Health"
SECURE_ROUTE_METHOD = f"/{_SERVICE}/SecureRoute"

# gRPC metadata values must be printable ASCII; anything else cannot be a bearer credential.
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")


#: ``dpop_public_base_url``: the URL clients use, when a proxy in front of the facade changes it.
PUBLIC_BASE_URL_KEY = web.AppKey("dpop_public_base_url", str)


def _proof_target(request: web.Request) -> tuple[str, str]:
    """The request's method and URL as its DPoP proof names them (RFC 9449 §4.2: ``htu`` without
    query and fragment): the configured public base URL and the path, else, as the guard's aiohttp
    middleware takes them, the scheme of this connection, the ``Host`` the client sent, the path."""
    base = request.app.get(PUBLIC_BASE_URL_KEY)
    if base is not None:
        return request.method, base + request.rel_url.raw_path
    return request.method, str(request.url.with_query(None).with_fragment(None))


def _metadata(request: web.Request) -> list[tuple[str, str]]:
    metadata = [("x-request-id", request[REQUEST_ID_KEY])]
    # Every Authorization header, each as its own entry: jwt_authn refuses more than one
    # (malformed_authorization), as it does over gRPC. Forwarding only the first would let a
    # second, different credential pass unseen.
    metadata.extend(("authorization", value) for value in request.headers.getall("Authorization", []))
    proofs = request.headers.getall("DPoP", [])
    if proofs:
        # Every DPoP proof (the guard refuses several), and what the proof must match: the
        # service sees our call, not the client's request, and trusts these from its configured
        # proxies only (trusted_proxies). Never a client's own DPoP-Htm/-Htu headers.
        metadata.extend((DPOP_METADATA, proof) for proof in proofs)
        htm, htu = _proof_target(request)
        metadata += [(DPOP_HTM_METADATA, htm), (DPOP_HTU_METADATA, htu)]
    return metadata


@web.middleware
async def malformed_authorization_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 400 when any Authorization or DPoP value, or the URL a proof is checked against, cannot
    travel as gRPC metadata (grpc-core would refuse to send it, and the call would end in a 500);
    the one program answers the same."""
    values = [*request.headers.getall("Authorization", ()), *request.headers.getall("DPoP", ())]
    if "DPoP" in request.headers:
        values.append(_proof_target(request)[1])
    if all(_METADATA_VALUE.fullmatch(value) for value in values):
        return await handler(request)
    # RFC 6750 §3.1: a malformed request is invalid_request, answered with 400.
    return render_error(
        request,
        400,
        "invalid_request",
        "malformed Authorization header",
        {"WWW-Authenticate": 'Bearer error="invalid_request"'},
    )


async def _call_backend(
    request: web.Request, method: str, message: Message, document: Callable[[Any], dict[str, Any]]
) -> web.Response:
    """Call ``method`` of the service with the request's credentials and answer 200 with the reply's
    message (``document(reply)`` as JSON); a gRPC error is answered by its row of the status map."""
    backend = request.app[BACKEND_KEY]
    try:
        reply = await getattr(backend.stub, method)(
            message,
            timeout=backend.timeout_s,
            metadata=_metadata(request),
            wait_for_ready=False,
        )
    except grpc.aio.AioRpcError as err:
        return render_rpc_error(request, err)
    return render(request, 200, reply.message, lambda: document(reply))


def _health_document(reply: secureroute_pb2.HealthResponse) -> dict[str, Any]:
    return {"message": reply.message}


#: Integers a double holds exactly (IEEE 754 binary64: 53 bits of significand).
_EXACT_INTEGER_LIMIT = 2**53


def _json_number(number: float) -> int | float | None:
    """A ``Struct`` number as JSON. ``Struct`` holds every number as a double, so a token's
    ``"exp": 1796218210`` arrives as 1796218210.0: a whole number a double holds exactly goes
    back out as the integer it was. A non-finite number (JSON cannot carry one) becomes null."""
    if not math.isfinite(number):
        return None
    if number.is_integer() and abs(number) <= _EXACT_INTEGER_LIMIT:
        return int(number)
    return number


def _json_value(value: struct_pb2.Value) -> Any:
    """A ``Value`` as plain JSON data: what ``json_format.MessageToDict`` gives, at half its cost,
    except for numbers (see ``_json_number``)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return _json_number(value.number_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _json_object(value.struct_value)
    if kind == "list_value":
        return [_json_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set


def _json_object(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in struct.fields.items()}


def _secure_route_document(reply: secureroute_pb2.SecureRouteResponse) -> dict[str, Any]:
    return {"message": reply.message, "subject": reply.subject, "claims": _json_object(reply.claims)}


async def health(request: web.Request) -> web.Response:
    return await _call_backend(request, "Health", secureroute_pb2.HealthRequest(), _health_document)


async def secure_route(request: web.Request) -> web.Response:
    return await _call_backend(
        request, "SecureRoute", secureroute_pb2.SecureRouteRequest(), _secure_route_document
    )


def add_routes(app: web.Application, *, dpop_public_base_url: str | None = None) -> None:
    if dpop_public_base_url is not None:
        app[PUBLIC_BASE_URL_KEY] = dpop_public_base_url
    # add_get also answers HEAD (allow_head=True); other methods get 405 with Allow.
    app.router.add_get("/health", health)
    app.router.add_get("/secure-route", secure_route)


@operation(HEALTH_METHOD)
async def local_health(request: web.Request) -> web.Response:
    reply = await request.app[LOCAL_BACKEND_KEY].calls.health()
    return render(request, 200, reply.message, lambda: _health_document(reply))


@operation(SECURE_ROUTE_METHOD)
async def local_secure_route(request: web.Request) -> web.Response:
    calls = request.app[LOCAL_BACKEND_KEY].calls
    if not wants_json(request):  # the text answer is the message alone: no claims to convert
        return web.Response(text=await calls.secure_message(current_principal()), content_type="text/plain")
    reply = await calls.secure_route(current_principal())
    return web.json_response(_secure_route_document(reply))


#: The guard's HTTP statuses as the gRPC codes the remote facade would get from the service.
_REJECTION_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _rejection(
    request: web.Request, status: int, text: str, headers: Sequence[tuple[str, str]]
) -> web.Response:
    code = _REJECTION_CODES.get(status, grpc.StatusCode.UNAUTHENTICATED)
    # As the remote facade joins the service's challenge trailers (Bearer and DPoP): one field.
    challenges = [value for name, value in headers if name == "WWW-Authenticate"]
    nonce = next((value for name, value in headers if name == "DPoP-Nonce"), None)
    return render_status(request, code, text, ", ".join(challenges) or None, nonce)


def _deadline_middleware(timeout_s: float) -> Any:
    """The backend deadline of the remote facade, kept in the one program: the guard (a key fetch
    for an unknown kid) and the handler answer within ``timeout_s``, else 504."""
    deadlines = Deadlines(timeout_s)

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = deadlines.enter()
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not deadlines.expired(task):
                raise  # the client went away
            return render_status(request, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        finally:
            deadlines.leave(task)

    return deadline


def add_local_routes(app: web.Application, backend: LocalBackend, timeout_s: float) -> None:
    """The routes of the one program: ``backend.calls`` behind ``backend.authenticator``'s guard."""
    app[LOCAL_BACKEND_KEY] = backend
    app.middlewares.append(_deadline_middleware(timeout_s))
    app.middlewares.append(authn_middleware(backend.authenticator, reject=_rejection))
    app.router.add_get("/health", local_health)
    app.router.add_get("/secure-route", local_secure_route)
