"""The interceptor for threaded ``grpc.server(...)`` services, sharing the async core.

The Authenticator (key-set cache, token cache, fetching) runs on one event loop in a daemon
thread owned by ``SyncAuthenticator``; the interceptor, on gRPC's worker threads, submits each
check to that loop and waits for the answer (bounded by ``timeout_s``).

Usage:
    authenticator = SyncAuthenticator(config)          # starts its loop and key loading
    server = grpc.server(
        ThreadPoolExecutor(8),
        interceptors=[SyncAuthInterceptor(authenticator)],
        options=recommended_server_options(config),
    )
    ...
    authenticator.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import AuthnConfig
from jwt_authn.errors import AuthnError, KeySetUnavailable
from jwt_authn.grpc_aio import abort_on_thread, call_credentials, sender_in_context
from jwt_authn.handler_wrapping import (
    Behavior,
    Handler,
    rejecting_handler,
    streaming_with,
    unary_with,
    with_principal,
    wrap_behavior,
)
from jwt_authn.observer import AuthnObserver
from jwt_authn.policy_check import ServedCheck
from jwt_authn.principal import Principal
from jwt_authn.replay import ReplayStore
from jwt_authn.sender import CallContextNeeded, SenderContext
from jwt_authn.status_map import grpc_rejection

__all__ = ["SyncAuthInterceptor", "SyncAuthenticator"]

log = logging.getLogger(__name__)


class SyncAuthenticator:
    """An Authenticator living on its own event-loop thread, callable from any thread."""

    def __init__(
        self,
        config: AuthnConfig,
        *,
        timeout_s: float = 10.0,
        observer: AuthnObserver | None = None,
        replay_store: ReplayStore | None = None,
    ) -> None:
        self.config = config
        self._observer = observer
        self._replay_store = replay_store
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jwt-authn-loop", daemon=True)
        self._thread.start()
        self.authenticator: Authenticator = self._run(self._create(), timeout_s=timeout_s)

    async def _create(self) -> Authenticator:
        authenticator = Authenticator(self.config, observer=self._observer, replay_store=self._replay_store)
        await authenticator.start()
        return authenticator

    def _run(self, coroutine: Any, *, timeout_s: float | None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def authenticate(
        self, values: Sequence[str], method: str, *, sender: SenderContext | None = None
    ) -> Principal | None:
        try:
            return self._run(  # type: ignore[no-any-return]
                self.authenticator.authenticate(values, method, sender=sender), timeout_s=self.timeout_s
            )
        except concurrent.futures.TimeoutError:
            raise KeySetUnavailable("authentication_timeout", "authentication took too long") from None

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        wait_s = None if timeout_s is None else timeout_s + 5  # the inner wait ends first
        return self._run(self.authenticator.wait_ready(timeout_s), timeout_s=wait_s)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self.authenticator.close(), timeout_s=self.timeout_s)
            if self._replay_store is not None:
                # A given store (Redis) made its connections on this loop: it is closed here too.
                self._run(self._replay_store.close(), timeout_s=self.timeout_s)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout_s)
        self._loop.close()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _rejecting(handler: Handler, error: AuthnError, config: AuthnConfig) -> Handler:
    code, details, trailers = grpc_rejection(error, config.realm, config.dpop.algorithms)

    def reject(request: Any, context: grpc.ServicerContext) -> None:
        context.set_trailing_metadata(trailers)
        context.abort(code, details)

    return rejecting_handler(handler, reject)


def _authenticating_in_handler(
    handler: Handler, authenticator: SyncAuthenticator, values: list[str], sender: SenderContext, method: str
) -> Handler:
    """``handler`` authenticating the call from its context first (see ``grpc_aio``)."""
    config = authenticator.config

    def authenticate(context: Any) -> Principal:
        try:
            principal = authenticator.authenticate(
                values, method, sender=sender_in_context(sender, context, method)
            )
        except AuthnError as error:
            abort_on_thread(context, error, method, config)
        assert principal is not None
        return principal

    def unary(behavior: Behavior) -> Behavior:
        def call(request: Any, context: Any) -> Any:
            return unary_with(authenticate(context), behavior)(request, context)

        return call

    def streaming(behavior: Behavior) -> Behavior:
        def stream(request: Any, context: Any) -> Iterator[Any]:
            yield from streaming_with(authenticate(context), behavior)(request, context)

        return stream

    return wrap_behavior(handler, unary=unary, streaming=streaming)


_NOT_THREADED = (
    "SyncAuthInterceptor only works on a threaded grpc.server; on a grpc.aio server use"
    " AsyncAuthInterceptor(Authenticator(config)) (the call was refused)"
)


# Also a grpc.aio.ServerInterceptor, only so that grpc.aio.server() accepts it and the first call
# gets an error naming the right adapter: grpc.aio's own check says "Interceptor must be
# ServerInterceptor" without naming either (grpc/grpc aio/_server.py, an unformatted message).
class SyncAuthInterceptor(grpc.ServerInterceptor, grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires a valid bearer token on every non-public method of a threaded grpc server."""

    def __init__(self, authenticator: SyncAuthenticator, *, check_served: bool = True) -> None:
        if not isinstance(authenticator, SyncAuthenticator):
            raise TypeError(
                f"SyncAuthInterceptor needs a SyncAuthenticator, not {type(authenticator).__name__}:"
                " a threaded grpc.server cannot await an Authenticator"
                " (use AsyncAuthInterceptor on grpc.aio servers)"
            )
        self._authenticator = authenticator
        self._config = authenticator.config
        #: Checks the policy against the served methods on the first call (None: turned off); the
        #: lock lets one call at a time probe.
        self._served_check = (
            ServedCheck(authenticator.config.policy, log, "SyncAuthInterceptor") if check_served else None
        )
        self._probing = threading.Lock()

    def _check_served(
        self,
        check: ServedCheck,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
        found: bool,
    ) -> None:
        """Ask the server's handler lookup about each policy entry; log those that name nothing."""
        details_type: Any = type(handler_call_details)  # grpc.HandlerCallDetails has no public constructor
        answers: dict[str, bool] = {}
        try:
            for name in check.targets:
                answers[name] = continuation(details_type(name, ())) is not None
        except Exception as error:  # never fail a call because the check could not run
            check.pending = False
            log.warning("the policy could not be checked against the served methods: %r", error)
            return
        check.record(handler_call_details.method if found else None, answers)

    def intercept_service(  # type: ignore[override]  # grpc.aio's signature: refused on the first call
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        if _in_event_loop():
            # grpc.aio awaits interceptors in its event loop; a threaded server's thread has none.
            raise TypeError(_NOT_THREADED)
        handler = continuation(handler_call_details)
        check = self._served_check
        if check is not None and check.pending and self._probing.acquire(blocking=False):
            try:
                if check.pending:
                    self._check_served(check, continuation, handler_call_details, handler is not None)
            finally:
                self._probing.release()
        method = handler_call_details.method
        if handler is None or self._authenticator.authenticator.is_public(method):
            return handler
        values, sender = call_credentials(handler_call_details.invocation_metadata, method, self._config.dpop)
        try:
            principal = self._authenticator.authenticate(values, method, sender=sender)
        except CallContextNeeded:
            return _authenticating_in_handler(handler, self._authenticator, values, sender, method)
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", method, error.reason, error.detail)
            return _rejecting(handler, error, self._config)
        if principal is None:  # an allow-missing method called without a token
            return handler
        return with_principal(handler, principal)
