"""The one way to start a program of this repository as a child process: in its own process group,
its output in a log file, its ports read from its own start-up lines, stopped with SIGTERM then
SIGKILL after a timeout. ``make run``, the tests, the benchmark and the attack run all use it.

Programs bind port 0 and say what they got (``secureroute listening on 127.0.0.1:42891 (grpc)``,
``metrics on http://127.0.0.1:40013/metrics``, the issuer's ``listening on http://127.0.0.1:8080``):
reading that line has no "find a free port, then pass it" step that another process could race.

Output goes to a file, never to a pipe that could fill: a driver that measures (the benchmark,
the attack run) reads nothing while the child serves; lines are read from the file only when asked
(``lines``, ``wait_for``, ``listening``). With ``relay`` (``make run``, whose children live for
hours) there is no file: a thread reads the child's pipe as it comes, copies each line to our
stderr, and keeps only the last ``RELAYED_LINES_KEPT`` (for the ports and a failure's tail).

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
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dev_stack.config import ROOT

__all__ = ["NO_METRICS_ENV", "RELAYED_LINES_KEPT", "Child", "ChildExited", "child_env"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded before any fork: the pre-exec hook must not import or load anything.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
#: How often a wait looks at the log file again.
_POLL_S = 0.05
#: A relayed child's lines kept in memory: its start-up lines and a failure's tail need far fewer.
RELAYED_LINES_KEPT = 1000
#: A relayed line longer than this is passed on in pieces (a child's output cannot grow our memory).
_MAX_LINE_BYTES = 64 * 1024
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

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path | None) -> None:
        self.name = name
        self.process = process
        #: None: relayed (the output is read from the pipe by ``_relay``'s thread).
        self.log_path = log_path
        self.ports: dict[str, int] = {}
        self._waited_for: str | None = None
        self._lines: list[str] = []
        self._offset = 0
        self._partial = b""
        self._kept: deque[str] = deque(maxlen=RELAYED_LINES_KEPT)
        #: Listeners reported so far, by kind (first report wins), noted as each line arrives.
        self._reported: dict[str, int] = {}
        self._kept_lock = threading.Lock()
        self._relay: threading.Thread | None = None
        if log_path is None:
            self._relay = threading.Thread(target=self._relay_pipe, name=f"relay {name}", daemon=True)
            self._relay.start()

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        cwd: Path = ROOT,
        env: Mapping[str, str] | None = None,
        stdout: Path | None = None,
        relay: bool = False,
    ) -> Child:
        """Start ``argv``; its stderr (and stdout, unless ``stdout`` names a file of its own) goes
        to ``log``; or, with ``relay`` instead, both are copied to our stderr, each line prefixed."""
        if relay:
            if log is not None or stdout is not None:
                raise ValueError("relay: the output goes to our stderr, not to log or stdout files")
            return cls(
                name, cls._popen(argv, cwd, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), None
            )
        if log is None:
            raise ValueError("log: a file for the child's output is needed unless it is relayed")
        # Truncated: ports and lines are read from the start of the file, this child's only.
        with log.open("wb") as out, stdout.open("wb") if stdout else contextlib.nullcontext(out) as printed:
            return cls(name, cls._popen(argv, cwd, env, stdout=printed, stderr=out), log)

    @staticmethod
    def _popen(
        argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None, *, stdout: Any, stderr: Any
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - our own programs
            list(argv),
            cwd=cwd,
            env=dict(child_env() if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            process_group=0,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - loads nothing (see _LIBC)
        )

    @property
    def log_file(self) -> Path:
        """The file its output goes to (a child started with ``log``)."""
        if self.log_path is None:
            raise ValueError(f"{self.name}: relayed, its output goes to no file")
        return self.log_path

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
        """Every complete line the child has written so far (relayed: the last ``RELAYED_LINES_KEPT``)."""
        if self.log_path is None:
            with self._kept_lock:
                return list(self._kept)
        exited = self.returncode is not None  # then an unfinished last line is finished too
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        if exited and self._partial:
            complete.append(self._partial)
            self._partial = b""
        new = [line.decode(errors="replace") for line in complete]
        for line in new:
            self._note_ports(line)
        self._lines += new
        return self._lines

    def _note_ports(self, line: str) -> None:
        message = _message(line)
        if found := _LISTENING.search(message):
            self._reported.setdefault(found["kind"] or found["scheme"] or "tcp", int(found["port"]))
        elif found := _METRICS.search(message):
            self._reported.setdefault("metrics", int(found["port"]))

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
            self.lines  # noqa: B018 - reads what the child wrote since, noting its ports
            with self._kept_lock:
                ports = dict(self._reported)
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
            # Its last lines: the pipe ends when the child (and any helper it left) has exited.
            await asyncio.to_thread(self._relay.join, 5)
        return code

    def _relay_pipe(self) -> None:
        """Copy the child's lines to our stderr, prefixed with its name, until its pipe ends."""
        pipe = self.process.stdout
        assert pipe is not None  # started with stdout=PIPE
        with pipe:
            while raw := pipe.readline(_MAX_LINE_BYTES):
                line = raw.decode(errors="replace").rstrip("\n")
                sys.stderr.write(f"[{self.name}] {line}\n")
                sys.stderr.flush()
                with self._kept_lock:
                    self._kept.append(line)
                    self._note_ports(line)
