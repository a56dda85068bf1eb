"""The one way to start a program of this repository as a child process: in its own process group,
its output in a log file, its ports read from its own start-up lines, stopped with SIGTERM then
SIGKILL after a timeout. ``make run``, the tests, the benchmark and the attack run all use it.

Programs bind port 0 and say what they got (``secureroute listening on 127.0.0.1:42891 (grpc)``,
``metrics on http://127.0.0.1:40013/metrics``, the issuer's ``listening on http://127.0.0.1:8080``):
reading that line has no "find a free port, then pass it" step that another process could race.

Output goes to a file, never to a pipe that could fill: a driver that measures (the benchmark,
the attack run) reads nothing while the child serves; lines are read from the file only when asked
(``lines``, ``wait_for``, ``listening``) or, with ``relay``, copied to our stderr as they come.

Own process group: a Ctrl-C in the terminal reaches only the parent, which then stops the children
in order instead of all of them racing to exit at once. On Linux each child also gets SIGTERM when
the thread that started it dies (even by SIGKILL), so no orphan keeps a port busy.

Usage:
    child = Child.start("service", [sys.executable, "-m", "service", "--listen", "127.0.0.1:0", ...],
                        log=tmp_path / "service.log")
    await child.listening("grpc", "metrics")     # child.ports == {"grpc": 42891, "metrics": 40013}
    await child.wait_for(r"key set loaded")
    assert await child.stop() == 0
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dev_stack.config import ROOT

__all__ = ["NO_METRICS_ENV", "Child", "ChildExited", "child_env"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded before any fork: the pre-exec hook must not import or load anything.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
#: How often a wait looks at the log file again.
_POLL_S = 0.05
#: A listener's start-up line: "... listening on [scheme://]host:port [(kind)]" (the supervisor of
#: workers adds "with N workers"), or the admin listener's "metrics on http://host:port/metrics".
_LISTENING = re.compile(r"listening on (?:(?P<scheme>\w+)://)?\S+:(?P<port>\d+)(?: \((?P<kind>\w+)\))?")
_METRICS = re.compile(r"metrics on http://\S+:(?P<port>\d+)/metrics")
#: Admin listeners off, for programs that run side by side and would all want the default port.
NO_METRICS_ENV = {"SECUREROUTE_METRICS_LISTEN": "off", "SECUREROUTE_HTTP_METRICS_LISTEN": "off"}


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGTERM when the parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_env(**extra: str) -> dict[str, str]:
    """Our environment for a child, plus ``extra``: without SECUREROUTE_* settings or a metrics
    directory (flags configure the children; a stray one from the shell would point them elsewhere),
    unbuffered (log lines reach the file as they happen)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREROUTE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def _message(line: str) -> str:
    """A JSON log line's message (the programs log JSON when not on a terminal), else the line."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(line).get("message", line))
    return line


class ChildExited(Exception):
    """A child exited while we waited for it (or for another part)."""

    def __init__(self, name: str, code: int, tail: str = "") -> None:
        super().__init__(f"{name} exited with code {code}" + (f":\n{tail}" if tail else ""))
        self.name = name
        self.code = code


class Child:
    """A started program; ``ports`` holds what it reported binding, by kind, once ``listening``."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path, relay: bool) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.ports: dict[str, int] = {}
        self._waited_for: str | None = None
        self._lines: list[str] = []
        self._offset = 0
        self._partial = b""
        self._relay = asyncio.ensure_future(self._relay_lines()) if relay else None

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        cwd: Path = ROOT,
        env: Mapping[str, str] | None = None,
        stdout: Path | None = None,
        relay: bool = False,
    ) -> Child:
        """Start ``argv``; its stderr (and stdout, unless ``stdout`` names a file of its own) goes
        to ``log``. ``relay`` (in a running loop): copy each line to our stderr, prefixed."""
        # Truncated: ports and lines are read from the start of the file, this child's only.
        with log.open("wb") as out, stdout.open("wb") if stdout else contextlib.nullcontext(out) as printed:
            process = subprocess.Popen(  # noqa: S603 - our own programs
                list(argv),
                cwd=cwd,
                env=dict(child_env() if env is None else env),
                stdin=subprocess.DEVNULL,
                stdout=printed,
                stderr=out,
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - loads nothing (see _LIBC)
            )
        return cls(name, process, log, relay)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def port(self) -> int:
        """Once ``listening``: the port of the first kind it waited for, else of the first listener
        reported (the admin listener aside)."""
        if self._waited_for is not None:
            return self.ports[self._waited_for]
        return next(port for kind, port in self.ports.items() if kind != "metrics")

    @property
    def lines(self) -> list[str]:
        """Every complete line the child has written so far."""
        exited = self.returncode is not None  # then an unfinished last line is finished too
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        if exited and self._partial:
            complete.append(self._partial)
            self._partial = b""
        self._lines += [line.decode(errors="replace") for line in complete]
        return self._lines

    @property
    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines so far, parsed (lines that are not JSON objects are left out)."""
        found = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                if isinstance(record := json.loads(line), dict):
                    found.append(record)
        return found

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.lines[-count:])

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def rss_kib(self) -> int:
        """Resident set size from /proc/PID/status (VmRSS, KiB); 0 once the child is gone."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    async def until(self, found: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
        """Poll ``found`` until it returns something; ChildExited if the child exits first,
        TimeoutError (saying ``what``) when ``timeout_s`` passes."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + timeout_s
        while (result := found()) is None:
            if (code := self.returncode) is not None:
                if (result := found()) is not None:  # said it, then exited
                    return result
                raise ChildExited(self.name, code, self.tail())
            if loop.time() >= give_up_at:
                raise TimeoutError(f"{self.name} did not {what} within {timeout_s:g} s:\n{self.tail()}")
            await asyncio.sleep(_POLL_S)
        return result

    async def wait_for(self, pattern: str, *, count: int = 1, timeout_s: float = 30.0) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` in the log messages, once there are as many."""
        regex = re.compile(pattern)

        def matches() -> list[re.Match[str]] | None:
            found = [m for line in self.lines if (m := regex.search(_message(line)))]
            return found[:count] if len(found) >= count else None

        return await self.until(matches, timeout_s=timeout_s, what=f"log {pattern!r}")

    async def listening(self, *kinds: str, timeout_s: float = 60.0) -> Child:
        """Wait until the child has reported a listener of each of ``kinds`` ("grpc", "http",
        "https", "metrics"; a line without a kind counts as its URL's scheme, else "tcp"), or any
        one listener when none is named; fills ``ports`` (first report of each kind wins)."""

        def reported() -> dict[str, int] | None:
            ports: dict[str, int] = {}
            for message in map(_message, self.lines):
                if found := _LISTENING.search(message):
                    kind = found["kind"] or found["scheme"] or "tcp"
                    ports.setdefault(kind, int(found["port"]))
                elif found := _METRICS.search(message):
                    ports.setdefault("metrics", int(found["port"]))
            listeners = set(ports) - {"metrics"}
            return ports if set(kinds) <= set(ports) and (kinds or listeners) else None

        self.ports = await self.until(reported, timeout_s=timeout_s, what=f"report its {kinds or 'port'}")
        self._waited_for = kinds[0] if kinds else None
        return self

    async def wait(self, timeout_s: float | None = None) -> int:
        """Its exit code, once it has exited (TimeoutError after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            # Polled: a process's exit is no event asyncio hands us for a Popen child.
            while (code := self.returncode) is None:  # noqa: ASYNC110
                await asyncio.sleep(_POLL_S)
        return code

    async def stop(self, signum: int = signal.SIGTERM, *, timeout_s: float = 15.0) -> int:
        """``signum`` (SIGTERM: a clean stop), wait up to ``timeout_s``, then SIGKILL its whole group
        (a child's own helpers must not outlive it); returns the exit code."""
        if self.returncode is None:
            self.send_signal(signum)
            try:
                await self.wait(timeout_s)
            except TimeoutError:
                sys.stderr.write(f"{self.name} did not stop within {timeout_s:g} s; killing it\n")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
        code = await self.wait()
        if self._relay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relay, 5)
        return code

    async def _relay_lines(self) -> None:
        """Copy the child's lines to our stderr, prefixed with its name, until it has exited."""
        relayed = 0
        while True:
            exited = self.returncode is not None  # read once more after exit: its last lines
            lines = self.lines
            for line in lines[relayed:]:
                sys.stderr.write(f"[{self.name}] {line}\n")
            sys.stderr.flush()
            relayed = len(lines)
            if exited:
                return
            await asyncio.sleep(_POLL_S)
