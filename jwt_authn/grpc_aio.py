"""The grpc.aio server interceptor: glue between gRPC metadata and the Authenticator.

Unknown methods stay UNIMPLEMENTED (the continuation is asked first); public methods pass;
every other call needs a valid bearer token. On the first call the interceptor asks the server's
own handler lookup (the continuation) about each policy entry and logs an error for each entry
that names nothing served (``jwt_authn.policy_check``); ``check_served=False`` turns that off.
The verified principal is set in a ContextVar for the call (its own task), read with
``jwt_authn.current_principal()``.

Usage:
    authenticator = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)],
        options=recommended_server_options(config),
    )
    await authenticator.start()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import AuthnConfig
from jwt_authn.errors import AuthnError
from jwt_authn.handler_wrapping import Handler, rejecting_handler, with_principal
from jwt_authn.policy_check import ServedCheck
from jwt_authn.principal import principal_var
from jwt_authn.status_map import grpc_rejection

__all__ = ["AsyncAuthInterceptor", "recommended_server_options"]

log = logging.getLogger(__name__)


_NOT_AIO = (
    "AsyncAuthInterceptor only works on a grpc.aio server; on a threaded grpc.server use"
    " SyncAuthInterceptor(SyncAuthenticator(config)) (the call was refused)"
)


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

    def __init__(self, authenticator: Authenticator, *, check_served: bool = True) -> None:
        if not isinstance(authenticator, Authenticator):
            raise TypeError(
                f"AsyncAuthInterceptor needs an Authenticator, not {type(authenticator).__name__}"
                " (a SyncAuthenticator is for threaded grpc.server with SyncAuthInterceptor)"
            )
        self._authenticator = authenticator
        self._realm = authenticator.config.realm
        #: Checks the policy against the served methods on the first call (None: turned off).
        self._served_check = (
            ServedCheck(authenticator.config.policy, log, "AsyncAuthInterceptor") if check_served else None
        )

    async def _check_served(
        self,
        check: ServedCheck,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
        found: bool,
    ) -> None:
        """Ask the server's handler lookup about each policy entry; log those that name nothing."""
        # grpc.aio's continuation takes only its own details type: a copy of the call's own, with
        # another method name (grpc.HandlerCallDetails has no public constructor).
        details_type: Any = type(handler_call_details)
        answers: dict[str, bool] = {}
        try:
            for name in check.targets:
                answers[name] = await continuation(details_type(name, ())) is not None
        except Exception as error:  # never fail a call because the check could not run
            log.warning("the policy could not be checked against the served methods: %r", error)
            return
        check.record(handler_call_details.method if found else None, answers)

    def intercept_service(  # type: ignore[override]  # a coroutine for grpc.aio; None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Awaitable[Handler | None]:
        # grpc.aio awaits this in its event loop. A threaded grpc.server calls it on its serving
        # thread, where no loop runs, and would choke on the coroutine in that thread (every call
        # then timed out and server.stop() hung): refuse with the fix in the message instead;
        # grpc.server turns the exception into one UNKNOWN answer and keeps serving.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise TypeError(_NOT_AIO) from None
        return self._intercept(continuation, handler_call_details)

    async def _intercept(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        check = self._served_check
        if check is not None and check.pending:
            check.pending = False  # before the first await: one round, however many calls race
            await self._check_served(check, continuation, handler_call_details, handler is not None)
        method = handler_call_details.method
        # Unknown method: stay UNIMPLEMENTED. Public method: nothing to check.
        if handler is None or self._authenticator.is_public(method):
            return handler
        values = authorization_values(handler_call_details.invocation_metadata)
        try:
            principal = await self._authenticator.authenticate(values, method)
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
            return _rejecting(handler, error, self._realm)
        if principal is None:  # an allow-missing method called without a token
            return handler
        # grpc.aio runs the interceptors and then an async handler in the call's own task (one
        # task per RPC, its context copied from the server's, where no principal is set), so the
        # value set here is what the handler reads, and it dies with the call. A plain ``def``
        # handler runs on the server's migration_thread_pool instead, without this context:
        # with_principal rebuilds only those.
        principal_var.set(principal)
        return with_principal(handler, principal)
