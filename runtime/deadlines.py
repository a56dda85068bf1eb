"""Deadlines of many short tasks, kept by one sweeping timer instead of an ``asyncio.timeout`` each
(whose timer was a measurable share of a request that almost never times out). A task is stopped
between 1 and 1.1 times the timeout: the sweep, every tenth of it, cancels the late ones.

Usage:
    deadlines = Deadlines(timeout_s=1.0)
    task = deadlines.enter()                      # the current task
    try:
        return await work()
    except asyncio.CancelledError:
        if not deadlines.expired(task):
            raise                                  # cancelled by someone else
        return timed_out_answer()
    finally:
        deadlines.leave(task)
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

__all__ = ["Deadlines"]


class Deadlines:
    """The current deadlines of tasks, all of ``timeout_s``; see the module docstring."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None

    def enter(self) -> asyncio.Task[Any]:
        """Start the current task's deadline; returns the task."""
        task = asyncio.current_task()
        assert task is not None  # grpc.aio and aiohttp run each call in a task
        self._waiting[task] = monotonic() + self.timeout_s
        if self._sweep_handle is None:
            self._sweep_handle = asyncio.get_running_loop().call_later(self.timeout_s / 10, self._sweep)
        return task

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """True when ``task`` was cancelled for its deadline (the cancellation is then withdrawn, so
        the task may still answer)."""
        if task not in self._late:
            return False
        self._late.discard(task)
        task.uncancel()
        return True

    def leave(self, task: asyncio.Task[Any]) -> None:
        """End ``task``'s deadline."""
        self._waiting.pop(task, None)
        self._late.discard(task)

    def _sweep(self) -> None:
        now = monotonic()
        for task, deadline in list(self._waiting.items()):
            if deadline > now:
                break  # the rest came later
            del self._waiting[task]
            self._late.add(task)
            task.cancel()
        loop = asyncio.get_running_loop()
        self._sweep_handle = loop.call_later(self.timeout_s / 10, self._sweep) if self._waiting else None
