"""Run ``python -m dev_stack`` as a real process on free ports, for tests and scripts.

Usage:
    with LiveStack(tmp_path) as stack:        # the one program; LiveStack(tmp_path, split=True): split
        stack.http_url, stack.grpc_address, stack.issuer_url, stack.token, stack.pids
        assert stack.stop() == 0        # SIGTERM, as Ctrl-C would
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from dev_stack.config import HOST, ROOT

__all__ = ["LiveStack", "StackFailed", "free_port", "wait_gone"]


class StackFailed(Exception):
    """The stack exited or never became ready; the message carries its output."""


def free_port() -> int:
    """A port nothing listens on at this instant (another process may still take it: we retry)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class LiveStack:
    """``python -m dev_stack`` (``--split`` when ``split``) with free ports and a private state dir
    under ``workdir``."""

    def __init__(
        self, workdir: Path, *, split: bool = False, ready_timeout_s: float = 90.0, attempts: int = 3
    ) -> None:
        self.workdir = workdir
        self.split = split
        self.ready_timeout_s = ready_timeout_s
        self.attempts = attempts
        self.process: subprocess.Popen[bytes] | None = None
        self.summary: dict[str, Any] = {}
        self._log_path = workdir / "dev_stack.log"  # stderr: our log lines and the children's
        self._banner_path = workdir / "dev_stack.out"  # stdout: the ready banner (it holds a token)

    def __enter__(self) -> LiveStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def issuer_url(self) -> str:
        return str(self.summary["issuer_url"])

    @property
    def grpc_address(self) -> str:
        return str(self.summary["grpc_address"])

    @property
    def http_url(self) -> str:
        return str(self.summary["http_url"])

    @property
    def token(self) -> str:
        return str(self.summary["token"])

    @property
    def pids(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.summary["pids"].items()}

    def log(self) -> str:
        """Every log line of the stack and its children so far (stderr)."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def banner(self) -> str:
        """What the stack printed for the user (stdout): the ready banner."""
        return self._banner_path.read_text(errors="replace") if self._banner_path.exists() else ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.attempts + 1):
            if self._start_once():
                return
            # Exit code 2 is a busy port: another test took a "free" port in between. Try new ones.
            if self.process is None or self.process.returncode != 2 or attempt == self.attempts:
                raise StackFailed(f"dev_stack did not become ready:\n{self.log()}")

    def _start_once(self) -> bool:
        ready_file = self.workdir / "ready.json"
        ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "dev_stack",
            "--issuer-port", str(free_port()),
            "--grpc-port", str(free_port()),
            "--http-port", str(free_port()),
            "--metrics-port", "0",  # each child binds a free admin port: no test needs 9464
            "--state-dir", str(self.workdir / "issuer-state"), "--ready-file", str(ready_file),
            *(["--split"] if self.split else []),
        ]  # fmt: skip
        with self._log_path.open("ab") as log, self._banner_path.open("ab") as banner:
            self.process = subprocess.Popen(argv, cwd=ROOT, stdout=banner, stderr=log)  # noqa: S603
        give_up_at = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < give_up_at:
            if ready_file.exists():
                self.summary = json.loads(ready_file.read_text())
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        self.stop()
        return False

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (like Ctrl-C), wait, kill if it hangs; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits for whoever adopted it (not always a reaping init).
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pids: list[int], *, timeout_s: float = 15.0) -> list[int]:
    """Wait until these processes are gone; returns those still alive after ``timeout_s``."""
    give_up_at = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < give_up_at:
        alive = [p for p in alive if _pid_alive(p)]
        time.sleep(0.05)
    return alive
