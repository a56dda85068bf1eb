"""The guard's observer with traces on: jwt_authn's verdicts as attributes of the current span, its
key fetches as spans.

The attributes are ``jwt_authn.result``, ``.reason``, ``.issuer``, ``.key_id`` and ``enduser.id`` =
``sub``; never the token or other claims. Each key refresh, discovery and JWKS fetch becomes a span,
a child of the RPC's or request's span that caused it. This is jwt_authn's ``TracingObserver``
protocol, wrapped around the program's own observer (its metrics).

Usage:
    authenticator = Authenticator(config, observer=traced_observer(metrics))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jwt_authn import AuthnObserver, AuthnVerdict
from runtime.tracing import current_tracer

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["SpanRecordingObserver", "traced_observer"]


class SpanRecordingObserver:
    """The program's observer (metrics), plus jwt_authn's verdicts and key fetches as spans."""

    def __init__(self, inner: AuthnObserver, tracer: Tracer) -> None:
        self._inner, self._tracer = inner, tracer

    def on_outcome(self, reason: str) -> None:
        self._inner.on_outcome(reason)

    def on_verdict(self, verdict: AuthnVerdict) -> None:
        from opentelemetry import trace  # noqa: PLC0415

        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes = {"jwt_authn.result": verdict.result, "jwt_authn.reason": verdict.reason}
        if verdict.issuer is not None:
            attributes["jwt_authn.issuer"] = verdict.issuer
        if verdict.key_id is not None:
            attributes["jwt_authn.key_id"] = verdict.key_id
        if verdict.subject is not None:
            attributes["enduser.id"] = verdict.subject
        span.set_attributes(attributes)

    @contextlib.contextmanager
    def key_fetch(self, issuer: str, step: str, url: str) -> Iterator[None]:
        from opentelemetry import trace  # noqa: PLC0415

        refresh = step == "refresh"
        with self._tracer.start_as_current_span(
            f"jwt_authn {step}",
            kind=trace.SpanKind.INTERNAL if refresh else trace.SpanKind.CLIENT,
            attributes={"jwt_authn.issuer": issuer, "jwt_authn.source" if refresh else "url.full": url},
            # The error's text is jwt_authn's KeySourceError: safe to log, and it says why.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Exception as error:
                span.set_status(trace.StatusCode.ERROR, str(error)[:200])
                raise


def traced_observer(observer: AuthnObserver) -> AuthnObserver:
    """``observer``, also making spans of the guard's verdicts and key fetches; itself when off."""
    tracer = current_tracer()
    return observer if tracer is None else SpanRecordingObserver(observer, tracer)
