"""Load generators run together: at the same time, each parsed on its own, one CPU window for all.

The generators are small Python programs and the measured server a busy loop: what is checked is
overlap, order and arithmetic, never a duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.measure import LoadResult, run_generators

# Sleeps argv[1] seconds, then prints when it ran and the req/s it claims (argv[2]).
_GENERATOR = (
    "import json, os, sys, time; began = time.monotonic(); "
    "open(sys.argv[3], 'w').write(str(os.getpid())) if len(sys.argv) > 3 else None; "
    "time.sleep(float(sys.argv[1])); "
    "print(json.dumps({'began': began, 'ended': time.monotonic(), 'rps': float(sys.argv[2])}))"
)


@pytest.fixture
def busy_server() -> Iterator[int]:
    """A process that burns one core, standing in for the server whose CPU is measured."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _generator(seconds: float, rps: float, seen: list[dict[str, Any]], *extra: str) -> tuple[list[str], Any]:
    def parse(output: str) -> LoadResult:
        data = json.loads(output)
        seen.append(data)
        return LoadResult(requests=int(data["rps"]), rps=data["rps"], p50_us=1.0, p99_us=2.0, errors=0)

    return [sys.executable, "-c", _GENERATOR, str(seconds), str(rps), *extra], parse


def test_generators_run_at_once_and_share_one_cpu_figure(busy_server: int) -> None:
    seen: list[dict[str, Any]] = []
    results = run_generators(
        [_generator(1.2, 100.0, seen), _generator(1.2, 300.0, seen)],
        pids=[busy_server],
        warmup_s=0.0,
        duration_s=1.0,
    )
    assert [r.rps for r in results] == [100.0, 300.0]  # in the order given
    # Both were running at the same time.
    assert max(d["began"] for d in seen) < min(d["ended"] for d in seen)
    # One window, divided by the requests of both: the busy loop's CPU seconds per second.
    cpu = {r.server_cpu_us for r in results}
    assert len(cpu) == 1
    (cpu_us,) = cpu
    assert cpu_us is not None
    cpu_per_s = cpu_us * 400.0 / 1e6
    assert 0.1 < cpu_per_s < 1.1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by anyone) counts as gone.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _never_parsed(output: str) -> LoadResult:
    raise AssertionError("a failed generator's output is not parsed")


def test_a_failing_generator_is_named_with_its_exit_code_and_error(busy_server: int) -> None:
    seen: list[dict[str, Any]] = []
    failing = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(RuntimeError, match=r"failed \(3\): boom"):
        run_generators(
            [_generator(0.1, 100.0, seen), (failing, _never_parsed)],
            pids=[busy_server],
            warmup_s=0.0,
            duration_s=0.2,
        )


def test_generators_past_the_deadline_are_killed(busy_server: int, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    pid_file = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_generators(
            [_generator(60.0, 100.0, seen, str(pid_file))],
            pids=[busy_server],
            warmup_s=0.0,
            duration_s=0.2,
            timeout_s=1.0,
        )
    assert not _alive(int(pid_file.read_text()))
