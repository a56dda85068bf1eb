"""What the kernel says about a process: resident memory and CPU time, from /proc.

Usage:
    rss_kib(pid)                  # VmRSS
    cpu_s(pid)                    # user + system CPU seconds so far
"""

from __future__ import annotations

import os

__all__ = ["cpu_s", "rss_kib"]

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS from /proc/PID/status), KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces; the fields after its closing ")" do not.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
