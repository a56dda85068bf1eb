"""The grpc.aio server interceptor: glue between gRPC metadata and the Authenticator.

Unknown methods stay UNIMPLEMENTED (the continuation is asked first); public methods pass;
every other call needs a valid bearer token. On the first call the interceptor asks the server's
own handler lookup (the continuation) about each policy entry and logs an error for each entry
that names nothing served (``jwt_authn.policy_check``); ``check_served=False`` turns that off.
The verified principal is set in a ContextVar for the call (its own task), read with
``jwt_authn.current_principal()``.

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

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NoReturn

import grpc

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import AuthnConfig, DPoPConfig
from jwt_authn.errors import AuthnError
from jwt_authn.handler_wrapping import (
    Behavior,
    Handler,
    rejecting_handler,
    streaming_with,
    unary_with,
    with_principal,
    wrap_behavior,
)
from jwt_authn.policy_check import ServedCheck
from jwt_authn.principal import Principal, principal_var
from jwt_authn.sender import (
    DPOP_HTM_METADATA,
    DPOP_HTU_METADATA,
    DPOP_METADATA,
    CallContextNeeded,
    ProofTarget,
    SenderContext,
    peer_address,
    pem_certificate_thumbprint,
)
from jwt_authn.status_map import grpc_rejection

__all__ = ["AsyncAuthInterceptor", "call_credentials", "recommended_server_options", "sender_in_context"]

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


#: The sender of a call that carries no DPoP metadata, as an interceptor sees it.
_CONTEXT_UNKNOWN = SenderContext(call_context_known=False)
_DPOP_KEYS = frozenset({DPOP_METADATA, DPOP_HTM_METADATA, DPOP_HTU_METADATA})


def call_credentials(metadata: Any, method: str, dpop: DPoPConfig) -> tuple[list[str], SenderContext]:
    """The call's ``authorization`` values and its sender as the interceptor knows it (from the
    metadata alone: ``call_context_known`` is False). One pass over the metadata."""
    authorization: list[str] = []
    dpop_values: dict[str, list[str]] | None = None
    for key, value in metadata or ():
        if key == "authorization":
            if isinstance(value, str):
                authorization.append(value)
        elif key in _DPOP_KEYS and isinstance(value, str):
            if dpop_values is None:
                dpop_values = {DPOP_METADATA: [], DPOP_HTM_METADATA: [], DPOP_HTU_METADATA: []}
            dpop_values[key].append(value)
    if dpop_values is None:
        return authorization, _CONTEXT_UNKNOWN
    target = None
    if dpop.public_base_urls:
        # gRPC's HTTP/2 mapping: POST to <base>/<package.Service>/<Method>.
        target = ProofTarget("POST", uris=tuple(base.rstrip("/") + method for base in dpop.public_base_urls))
    return authorization, SenderContext(
        proofs=dpop_values[DPOP_METADATA],
        target=target,
        forwarded_htm=dpop_values[DPOP_HTM_METADATA],
        forwarded_htu=dpop_values[DPOP_HTU_METADATA],
        call_context_known=False,
    )


def sender_in_context(sender: SenderContext, context: Any, method: str) -> SenderContext:
    """``sender`` completed from the call's context (grpc.aio or threaded): the peer's address,
    TLS or not (the proof's scheme when no public base URL is set) and the client certificate
    the handshake verified (``x509_pem_cert``, RFC 8705 §3)."""
    auth = context.auth_context() or {}
    pems = auth.get("x509_pem_cert") or ()
    target = sender.target
    if target is None:
        # Python's grpc does not expose :authority (grpc/grpc#38906): scheme and path only.
        tls = auth.get("transport_security_type") == [b"ssl"]
        target = ProofTarget("POST", scheme_and_path=("https" if tls else "http", method))
    return sender._replace(
        target=target,
        peer_address=peer_address(context.peer()),
        certificate_thumbprint=pem_certificate_thumbprint(pems[0]) if pems else None,
        call_context_known=True,
    )


def _rejecting(handler: Handler, error: AuthnError, config: AuthnConfig) -> Handler:
    code, details, trailers = grpc_rejection(error, config.realm, config.dpop.algorithms)

    async def reject(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, details, trailing_metadata=trailers)

    return rejecting_handler(handler, reject)


def abort_on_thread(context: Any, error: AuthnError, method: str, config: AuthnConfig) -> NoReturn:
    """End a call whose handler runs on a thread (threaded gRPC, or a plain ``def`` handler on
    grpc.aio) with ``error``'s status and challenges."""
    log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
    code, details, trailers = grpc_rejection(error, config.realm, config.dpop.algorithms)
    context.set_trailing_metadata(trailers)
    context.abort(code, details)
    raise error  # pragma: no cover - abort raises


def _authenticating_in_handler(
    handler: Handler,
    authenticator: Authenticator,
    authorization: list[str],
    sender: SenderContext,
    method: str,
) -> Handler:
    """``handler`` authenticating the call itself, from its context (peer, TLS, certificate),
    before running its behavior. Used only when the interceptor could not decide: a DPoP proof
    whose URI needs the transport, forwarded DPoP values, a certificate-bound token. The request
    message of a unary call is read first (gRPC reads it before running a handler)."""
    config = authenticator.config
    loop = asyncio.get_running_loop()

    async def authenticate(context: Any) -> Principal:
        try:
            principal = await authenticator.authenticate(
                authorization, method, sender=sender_in_context(sender, context, method)
            )
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
            code, details, trailers = grpc_rejection(error, config.realm, config.dpop.algorithms)
            await context.abort(code, details, trailing_metadata=trailers)
            raise  # pragma: no cover - abort raises
        # Never None here: this path is taken only for a call that sent a token.
        assert principal is not None
        return principal

    def authenticate_on_worker(context: Any) -> Principal:
        # A plain ``def`` handler on a grpc.aio server runs on its migration_thread_pool: the
        # Authenticator lives on the server's loop, and this worker waits for its answer.
        try:
            full = sender_in_context(sender, context, method)
            principal = asyncio.run_coroutine_threadsafe(
                authenticator.authenticate(authorization, method, sender=full), loop
            ).result()
        except AuthnError as error:
            abort_on_thread(context, error, method, config)
        assert principal is not None
        return principal

    def unary(behavior: Behavior) -> Behavior:
        if inspect.iscoroutinefunction(behavior):

            async def call(request: Any, context: Any) -> Any:
                principal_var.set(await authenticate(context))  # the call's own task
                return await behavior(request, context)

            return call

        def call_on_worker(request: Any, context: Any) -> Any:
            return unary_with(authenticate_on_worker(context), behavior)(request, context)

        return call_on_worker

    def streaming(behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                principal_var.set(await authenticate(context))
                async for response in behavior(request, context):
                    yield response

            return stream
        if inspect.iscoroutinefunction(behavior):  # the context.write() style
            return unary(behavior)

        def stream_on_worker(request: Any, context: Any) -> Iterator[Any]:
            yield from streaming_with(authenticate_on_worker(context), behavior)(request, context)

        return stream_on_worker

    return wrap_behavior(handler, unary=unary, streaming=streaming)


class AsyncAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires a valid bearer token on every non-public method of a grpc.aio server."""

    def __init__(self, authenticator: Authenticator, *, check_served: bool = True) -> None:
        if not isinstance(authenticator, Authenticator):
            raise TypeError(
                f"AsyncAuthInterceptor needs an Authenticator, not {type(authenticator).__name__}"
                " (a SyncAuthenticator is for threaded grpc.server with SyncAuthInterceptor)"
            )
        self._authenticator = authenticator
        self._config = authenticator.config
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
        if handler is None:
            return None  # unknown method: stay UNIMPLEMENTED
        return await self.guard(handler, handler_call_details)

    async def guard(
        self,
        handler: Handler,
        handler_call_details: grpc.HandlerCallDetails,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]] | None = None,
    ) -> Handler:
        """The handler to run for this call of a known method: ``handler`` for a public method or a
        valid token (the principal then set for the call; a plain ``def`` behavior is rebuilt to
        see it on its worker thread), else a handler that answers the refusal without reading the
        request (or one that authenticates from the call's context, for DPoP). Call it in the call's
        own task (a server interceptor's), once per call; with ``continuation`` (the interceptor's),
        the first call also checks the policy against the served methods, as ``intercept_service``."""
        check = self._served_check
        if continuation is not None and check is not None and check.pending:
            check.pending = False  # before the first await: one round, however many calls race
            await self._check_served(check, continuation, handler_call_details, True)
        method = handler_call_details.method
        if self._authenticator.is_public(method):
            return handler  # nothing to check
        values, sender = call_credentials(handler_call_details.invocation_metadata, method, self._config.dpop)
        try:
            principal = await self._authenticator.authenticate(values, method, sender=sender)
        except CallContextNeeded:
            return _authenticating_in_handler(handler, self._authenticator, values, sender, method)
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
            return _rejecting(handler, error, self._config)
        if principal is None:  # an allow-missing method called without a token
            return handler
        # grpc.aio runs the interceptors and then an async handler in the call's own task (one
        # task per RPC, its context copied from the server's, where no principal is set), so the
        # value set here is what the handler reads, and it dies with the call. A plain ``def``
        # handler runs on the server's migration_thread_pool instead, without this context:
        # with_principal rebuilds only those.
        principal_var.set(principal)
        return with_principal(handler, principal)
