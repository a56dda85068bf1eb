"""``python -m service`` with a timer around each piece of the SecureRoute request path.

Bench-only: the in-process figures are measured in tight loops, where the CPU caches hold
nothing but the loop; inside the service the same code runs between gRPC core, asyncio and the
other calls, and costs several times more. This process shows by how much, piece by piece.

Every piece is wrapped with ``perf_counter_ns`` (about 0.1 µs per timer); pieces nest, so a
row includes the timers of the rows inside it. ``SIGUSR1`` writes the totals since the last
signal to ``--timings-file`` (JSON: ``{"serial": n, "calls": SecureRoute calls, "ns": {piece:
total}}``) and starts counting afresh, so a driver can bracket one load run.

Usage:
    python -m bench.timed_service --timings-file /tmp/t.json --listen 127.0.0.1:50051 --issuer ...
    kill -USR1 <pid>     # then read /tmp/t.json
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import jwt_authn.authenticator as authenticator_module
from jwt_authn.authenticator import Authenticator
from jwt_authn.config import Policy
from jwt_authn.token_cache import TokenCache
from service.__main__ import main as service_main
from service.handlers import ReplyCache

__all__ = ["AUTHENTICATE", "PIECES", "SIGNATURE", "install_timers", "main"]

#: Labels the report quotes.
AUTHENTICATE = "authenticate (all of the rows below but the reply)"
SIGNATURE = "signature check"
#: (label, owner, attribute): what is timed, in request-path order. Module-level functions are
#: patched where the authenticator looks them up.
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
    ("SecureRoute reply (claims Struct, or the reply cache)", ReplyCache, "reply_for"),
)
#: The piece called once per protected call: its count is the dump's "calls".
_PER_CALL = PIECES[0][0]
#: (nanoseconds by piece label, calls by piece label), since the last dump.
_Totals = tuple[collections.Counter[str], collections.Counter[str]]


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


def install_timers() -> _Totals:
    """Wrap every piece of ``PIECES``; returns (nanoseconds by piece, calls by piece)."""
    totals: _Totals = (collections.Counter(), collections.Counter())
    for label, owner, name in PIECES:
        current = inspect.getattr_static(owner, name)
        if isinstance(current, staticmethod):
            setattr(owner, name, staticmethod(_timed(current.__func__, label, totals)))
        else:
            setattr(owner, name, _timed(getattr(owner, name), label, totals))
    return totals


def _dump_on_signal(path: Path, totals: _Totals) -> Callable[[int, Any], None]:
    nanoseconds, calls = totals
    serial = 0

    def dump(signum: int, frame: Any) -> None:
        nonlocal serial
        serial += 1
        report = {"serial": serial, "calls": calls[_PER_CALL], "ns": dict(nanoseconds)}
        nanoseconds.clear()
        calls.clear()
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(report), encoding="utf-8")
        os.replace(partial, path)  # the reader never sees half a file

    return dump


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "--timings-file":
        raise SystemExit("usage: python -m bench.timed_service --timings-file PATH <service arguments>")
    path = Path(args[1])
    # Patching after the imports is enough: classes and module globals are looked up per call.
    signal.signal(signal.SIGUSR1, _dump_on_signal(path, install_timers()))
    service_main(args[2:])


if __name__ == "__main__":
    main()
