"""One supervised child process: started in its own process group, its output relayed with a
prefix, stopped with SIGTERM then SIGKILL after a timeout.

Own process group: a Ctrl-C in the terminal reaches only ``dev_stack``, which then stops the
children in order (facade, service, issuer) instead of all of them racing to exit at once.
On Linux each child also gets SIGTERM if ``dev_stack`` itself dies (even by SIGKILL), so no
orphan keeps ports 8080/50051/3000 busy for the next ``make run``.

Usage:
    child = await Child.start("issuer", [python, "-m", "dev_issuer", "serve"], cwd=ROOT)
    ...
    await child.stop(timeout_s=10)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Child"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded before any fork: the pre-exec hook must not import or load anything.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGTERM when the parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A running child; ``exited`` completes with its return code."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self._process = process
        self._relay = asyncio.create_task(self._relay_output())
        self.exited: asyncio.Task[int] = asyncio.create_task(process.wait())

    @classmethod
    async def start(
        cls, name: str, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> Child:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        return cls(name, process)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def _relay_output(self) -> None:
        """Copy the child's log lines to our stderr, prefixed with its name."""
        stream = self._process.stdout
        assert stream is not None  # started with stdout=PIPE
        prefix = f"[{self.name}] "
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the stream limit: pass it on in pieces
                line = await stream.read(65536)
            if not line:
                return
            sys.stderr.write(prefix + line.decode(errors="replace").rstrip("\n") + "\n")
            sys.stderr.flush()

    async def stop(self, *, timeout_s: float) -> int:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; returns the exit code."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), timeout_s)
            except TimeoutError:
                sys.stderr.write(f"dev_stack: {self.name} did not stop within {timeout_s:g} s; killing it\n")
                with contextlib.suppress(ProcessLookupError):
                    # The whole group: a child's own helpers must not outlive it.
                    os.killpg(self._process.pid, signal.SIGKILL)
        code = await self.exited
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._relay, 5)
        return code
