"""The grpc.aio server interceptor: glue between gRPC metadata and the Authenticator.

Unknown methods stay UNIMPLEMENTED (the continuation is asked first); public methods pass;
every other call needs a valid bearer token. The verified principal is set in a ContextVar
for the call (its own task), read with ``jwt_authn.current_principal()``.

An application whose own interceptor already finds the handler (metrics, admission) composes the
guard into that one pass with ``AsyncAuthInterceptor.guard`` instead of a second interceptor.

Usage:
    authenticator = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)],
        options=recommended_server_options(config),
    )
    await authenticator.start()

    handler = await AsyncAuthInterceptor(authenticator).guard(handler, handler_call_details)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import AuthnConfig
from jwt_authn.errors import AuthnError
from jwt_authn.handler_wrapping import Handler, rejecting_handler, with_principal
from jwt_authn.principal import principal_var
from jwt_authn.status_map import grpc_rejection

__all__ = ["AsyncAuthInterceptor", "recommended_server_options"]

log = logging.getLogger(__name__)


def recommended_server_options(config: AuthnConfig) -> list[tuple[str, int]]:
    """Metadata limits well above the token cap, so an oversized token gets our UNAUTHENTICATED
    and not gRPC's RESOURCE_EXHAUSTED (whose soft limit of 8 KiB rejects such calls at random)."""
    limit = max(64 * 1024, config.max_token_bytes * 16)
    return [("grpc.max_metadata_size", limit), ("grpc.absolute_max_metadata_size", limit)]


def authorization_values(metadata: Any) -> list[str]:
    """Every ``authorization`` value of the call's metadata (keys are lower-case in gRPC)."""
    return [value for key, value in (metadata or ()) if key == "authorization" and isinstance(value, str)]


def _rejecting(handler: Handler, error: AuthnError, realm: str) -> Handler:
    code, details, trailers = grpc_rejection(error, realm)

    async def reject(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, details, trailing_metadata=trailers)

    return rejecting_handler(handler, reject)


class AsyncAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires a valid bearer token on every non-public method of a grpc.aio server."""

    def __init__(self, authenticator: Authenticator) -> None:
        if not isinstance(authenticator, Authenticator):
            raise TypeError(
                f"AsyncAuthInterceptor needs an Authenticator, not {type(authenticator).__name__}"
                " (a SyncAuthenticator is for threaded grpc.server with SyncAuthInterceptor)"
            )
        self._authenticator = authenticator
        self._realm = authenticator.config.realm

    async def intercept_service(  # type: ignore[override]  # None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: stay UNIMPLEMENTED
        return await self.guard(handler, handler_call_details)

    async def guard(self, handler: Handler, handler_call_details: grpc.HandlerCallDetails) -> Handler:
        """The handler to run for this call of a known method: ``handler`` for a public method or a
        valid token (the principal then set for the call; a plain ``def`` behavior is rebuilt to
        see it on its worker thread), else a handler that answers the refusal without reading the
        request. Call it in the call's own task (a server interceptor's), once per call."""
        method = handler_call_details.method
        if self._authenticator.is_public(method):
            return handler  # nothing to check
        values = authorization_values(handler_call_details.invocation_metadata)
        try:
            principal = await self._authenticator.authenticate(values, method)
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
            return _rejecting(handler, error, self._realm)
        assert principal is not None  # non-public methods always yield a principal
        # grpc.aio runs the interceptors and then an async handler in the call's own task (one
        # task per RPC, its context copied from the server's, where no principal is set), so the
        # value set here is what the handler reads, and it dies with the call. A plain ``def``
        # handler runs on the server's migration_thread_pool instead, without this context:
        # with_principal rebuilds only those.
        principal_var.set(principal)
        return with_principal(handler, principal)
