"""Run ``python -m dev_stack`` as a real process on ports of its own, for tests and scripts.

Every child binds port 0 and reports the port it got: no "find a free port, then pass it" step
that another test could race.

Usage:
    with LiveStack(tmp_path) as stack:        # the one program; LiveStack(tmp_path, split=True): split
        stack.http_url, stack.grpc_address, stack.issuer_url, stack.token, stack.pids
        assert stack.stop() == 0        # SIGTERM, as Ctrl-C would
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from dev_stack.children import Child

__all__ = ["LiveStack", "StackFailed", "wait_gone"]


class StackFailed(Exception):
    """The stack exited or never became ready; the message carries its output."""


class LiveStack:
    """``python -m dev_stack`` (``--split`` when ``split``) on free ports, with a private state dir
    under ``workdir``."""

    def __init__(self, workdir: Path, *, split: bool = False, ready_timeout_s: float = 90.0) -> None:
        self.workdir = workdir
        self.split = split
        self.ready_timeout_s = ready_timeout_s
        self.child: Child | None = None
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
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self.child is None else self.child.process

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
        ready_file = self.workdir / "ready.json"
        ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "dev_stack",
            "--issuer-port", "0", "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0",
            "--state-dir", str(self.workdir / "issuer-state"), "--ready-file", str(ready_file),
            *(["--split"] if self.split else []),
        ]  # fmt: skip
        # Our environment as it is: the stack filters what its children get, and says so.
        self.child = Child.start(
            "dev_stack", argv, log=self._log_path, stdout=self._banner_path, env=os.environ
        )

        def summary() -> dict[str, Any] | None:
            return json.loads(ready_file.read_text()) if ready_file.exists() else None

        try:
            self.summary = asyncio.run(
                self.child.until(summary, timeout_s=self.ready_timeout_s, what="become ready")
            )
        except Exception as err:
            self.stop()
            raise StackFailed(f"dev_stack did not become ready ({err}):\n{self.log()}") from None

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (like Ctrl-C), wait, kill if it hangs; returns the exit code."""
        return None if self.child is None else asyncio.run(self.child.stop(timeout_s=timeout_s))


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
