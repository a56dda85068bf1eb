"""Give the memory a burst of connections took back to the system once the burst is over.

Each connection of a slow-header or full-head attack holds a head of up to ``max_header_bytes``;
glibc keeps the freed blocks in its heap, between live ones, so the process stayed at its peak
after the attack (docs/reliability.md). ``malloc_trim(0)`` (glibc's documented API) hands the free
pages back. It is called only after a burst (the connection count went past ``BURST_CONNECTIONS``
and has since fallen below half its peak), at most once per ``TRIM_INTERVAL_S``; it walks the
heap, so calling it on every close would cost more than it saves. Where the C library has no
``malloc_trim`` (musl, macOS) nothing happens.

Usage:
    task = asyncio.create_task(trim_after_bursts(budget))
    ...
    task.cancel()
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from http_facade.connections import ConnectionBudget

__all__ = ["BURST_CONNECTIONS", "TRIM_INTERVAL_S", "trim_after_bursts"]

#: Open connections that make a burst: far above a pod's normal count, far below the cap.
BURST_CONNECTIONS = 256
#: How often the count is looked at: a heap walk takes milliseconds, so this costs nothing.
TRIM_INTERVAL_S = 5.0

_log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


async def trim_after_bursts(budget: ConnectionBudget, interval_s: float = TRIM_INTERVAL_S) -> None:
    """Forever: after each burst of connections has passed, return free heap pages to the system."""
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval_s)
        peak = budget.take_peak_connections()
        if peak >= BURST_CONNECTIONS and budget.open_connections < peak // 2:
            trim(0)
            _log.info("returned free memory to the system after %d connections at once", peak)
        elif peak >= BURST_CONNECTIONS:
            budget.note_peak(peak)  # still in the burst: look again later
