"""Run N worker processes of a program on one port, restart the ones that die, stop them all on SIGTERM.

The supervisor re-runs the program itself (``python -m service ...``) with ``--workers 1`` and
the concrete address appended (flags win over env and TOML, and the last flag wins), and with
``SECUREROUTE_WORKER`` in the environment so the child knows to bind with SO_REUSEPORT. The
caller reserves the port first (``runtime.listen.reserve_port``), so "port in use" is still a
one-line exit 2 and port 0 resolves once, for every worker.

- A worker that exits while we are not stopping is restarted, at most ``max_restarts`` times
  in ``restart_window_s``; past that the supervisor stops everything and exits 1 (a crash loop
  is a bug or a bad environment, and the orchestrator should see it).
- SIGTERM or SIGINT: every worker gets SIGTERM and ``grace_s`` (+5 s) to drain; stragglers are
  killed. The exit code is 0 when every worker exited 0 (or died of that SIGTERM while starting).
- Workers die with the supervisor (Linux PR_SET_PDEATHSIG), even if it is killed with -9.

Usage:
    plan = WorkerPlan(prog="secureroute-service", count=2, grace_s=10.0,
                      argv_for=lambda index: [sys.executable, "-m", "service", *argv, "--workers", "1"])
    raise SystemExit(supervise(plan))
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

#: ``"<index>:<supervisor pid>"`` in a worker's environment; absent in a standalone process.
from runtime.settings import WORKER_ENV

__all__ = ["WORKER_ENV", "WorkerIdentity", "WorkerPlan", "current_worker", "die_with_supervisor", "supervise"]

#: Extra time, past the grace period, before a worker that ignores SIGTERM is killed.
_KILL_MARGIN_S = 5.0
_PR_SET_PDEATHSIG = 1

_log = logging.getLogger("secureroute.workers")


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    index: int
    supervisor_pid: int


def current_worker(environ: Mapping[str, str] | None = None) -> WorkerIdentity | None:
    """This process's place under a supervisor, or None when it runs on its own."""
    value = (os.environ if environ is None else environ).get(WORKER_ENV, "")
    index, _, pid = value.partition(":")
    if not (index.isdigit() and pid.isdigit()):
        return None
    return WorkerIdentity(int(index), int(pid))


def die_with_supervisor(worker: WorkerIdentity) -> None:
    """Ask Linux to SIGTERM us when the supervisor dies; if it already did, stop now."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != worker.supervisor_pid:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    prog: str
    count: int
    #: The command line of worker ``index`` (0-based).
    argv_for: Callable[[int], Sequence[str]]
    grace_s: float
    env: Mapping[str, str] = field(default_factory=dict)
    #: At most this many restarts within ``restart_window_s`` (systemd's StartLimitBurst spirit).
    max_restarts: int = 5
    restart_window_s: float = 60.0


class _Supervisor:
    def __init__(self, plan: WorkerPlan) -> None:
        self._plan = plan
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._restarts: collections.deque[float] = collections.deque()
        self._stopping = asyncio.Event()
        self._gave_up = False

    async def _spawn(self, index: int) -> None:
        env = {**os.environ, **self._plan.env, WORKER_ENV: f"{index}:{os.getpid()}"}
        process = await asyncio.create_subprocess_exec(
            *self._plan.argv_for(index),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C reaches the supervisor only, which forwards SIGTERM.
            start_new_session=True,
        )
        self._processes[index] = process
        _log.info("worker %d started (pid %d)", index, process.pid)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > self._plan.restart_window_s:
            self._restarts.popleft()
        if len(self._restarts) >= self._plan.max_restarts:
            return False
        self._restarts.append(now)
        return True

    async def _watch(self, index: int) -> None:
        while True:
            process = self._processes[index]
            code = await process.wait()
            if self._stopping.is_set():
                return
            if not self._may_restart():
                _log.error(
                    "worker %d (pid %d) exited with %s; %d restarts in %.0f s: giving up",
                    index, process.pid, code, self._plan.max_restarts, self._plan.restart_window_s,
                )  # fmt: skip
                self._gave_up = True
                self._stopping.set()
                return
            _log.warning("worker %d (pid %d) exited with %s; restarting it", index, process.pid, code)
            await self._spawn(index)

    async def _stop_all(self) -> bool:
        """SIGTERM every worker, wait, kill stragglers. True when all exited 0."""
        running = [p for p in self._processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self._plan.grace_s + _KILL_MARGIN_S):
                await asyncio.gather(*(p.wait() for p in running))
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    _log.error("worker (pid %d) did not stop in time; killing it", process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in running))
        # A worker still starting has no handler yet, and dies of the SIGTERM itself: that is clean too.
        clean = (0, -signal.SIGTERM)
        for index, process in self._processes.items():
            if process in running and process.returncode not in clean:
                _log.warning("worker %d (pid %d) exited with %s", index, process.pid, process.returncode)
        return all(p.returncode in clean for p in running)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        for index in range(self._plan.count):
            await self._spawn(index)
        watchers = [asyncio.create_task(self._watch(index)) for index in range(self._plan.count)]
        await self._stopping.wait()
        for watcher in watchers:  # first, so no worker is restarted while we stop them
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        _log.info("stopping %d workers", len(self._processes))
        clean = await self._stop_all()
        _log.info("stopped")
        return 1 if self._gave_up or not clean else 0


def supervise(plan: WorkerPlan) -> int:
    """Run the workers until SIGTERM/SIGINT (or a crash loop); returns the exit code."""
    return asyncio.run(_Supervisor(plan).run())
