"""How both programs start: settings, logging, then one server or a supervisor of N workers.

Bad settings (or a busy port) print one line on stderr and exit with code 2. With
``workers > 1`` the process becomes a supervisor (``runtime.workers``) that re-runs the
program as its workers; a worker binds with SO_REUSEPORT and dies with its supervisor.

Usage:
    def main(argv: Sequence[str] | None = None) -> None:
        run_program(PROG, argv, load=_checked_settings, supervise=_supervise, serve=_serve)

    async def _serve(settings: Settings) -> None:
        stopping = watch_stop_signals()
        ...  # start serving
        await stopping.wait()
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

from runtime.logs import configure_logging
from runtime.settings import ProcessSettings, SettingsError
from runtime.tracing import configure_tracing, shutdown_tracing
from runtime.workers import current_worker, die_with_supervisor

__all__ = ["Serve", "run_program", "watch_stop_signals"]

# Every program's settings have the process group (grace, logging).
S = TypeVar("S", bound=ProcessSettings)
S_contra = TypeVar("S_contra", bound=ProcessSettings, contravariant=True)


class Serve(Protocol[S_contra]):
    """Serve until SIGTERM or SIGINT (a worker binds with SO_REUSEPORT: ``current_worker()`` is set)."""

    def __call__(self, settings: S_contra, /) -> Coroutine[Any, Any, None]: ...


def run_program(
    prog: str,
    argv: Sequence[str] | None,
    *,
    load: Callable[[Sequence[str]], S],
    supervise: Callable[[S, Sequence[str]], int] | None,
    serve: Serve[S],
    per_request_loggers: tuple[str, ...] = (),
) -> None:
    """Run a program to its end (``sys.argv[1:]`` when ``argv`` is None); exits 2 on bad settings.

    ``load`` reads and checks the settings (raising ``ValueError("setting: problem")``) before
    anything starts; ``supervise`` runs the workers and returns the exit code (None: a program
    without a ``workers`` setting, always one process); ``per_request_loggers`` write a line per
    refused request and are rate-limited, as the guard's are (``runtime.logs``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load(argv)
    except ValueError as err:  # SettingsError, or jwt_authn's "setting: problem"
        _exit_bad_settings(prog, err)
    configure_logging(settings.log_level, settings.log_format, per_request_loggers=per_request_loggers)
    worker = current_worker()
    try:
        if supervise is not None and getattr(settings, "workers", 1) > 1 and worker is None:
            raise SystemExit(supervise(settings, argv))
        if worker is not None:
            die_with_supervisor(worker)
        # Each serving process has its own exporter (a supervisor serves nothing).
        configure_tracing(prog)
        try:
            with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
                runner.run(serve(settings))
        finally:
            shutdown_tracing()
    except SettingsError as err:  # a port in use, an OTEL_* value we cannot use
        _exit_bad_settings(prog, err)


def _exit_bad_settings(prog: str, error: Exception) -> NoReturn:
    """Print ``prog: error: name: problem`` as one line on stderr and exit with code 2 (EX_USAGE)."""
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop (grpc.aio and aiohttp run on it, tested with uvloop 0.21+), or asyncio's (None)."""
    if name == "asyncio":
        return None
    import uvloop  # noqa: PLC0415  # only the serving process needs it

    return uvloop.new_event_loop


def watch_stop_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets, on the running loop."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    return stopping
