"""``dev_stack.children.Child``'s relay mode (``make run``): every line reaches our stderr, prefixed,
while memory keeps only the last ``RELAYED_LINES_KEPT``; the ports are read from the kept lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dev_stack.children import RELAYED_LINES_KEPT, Child

#: A child that says where it listens, then writes more lines than a relayed child keeps.
_CHATTY = f"""
import sys
print("demo listening on 127.0.0.1:4242 (grpc)", file=sys.stderr, flush=True)
for index in range({RELAYED_LINES_KEPT * 3}):
    print(f"line {{index}}", flush=True)
print("x" * 150_000, end="", flush=True)
"""


async def test_a_relayed_child_passes_every_line_on_and_keeps_a_bounded_tail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = Child.start("chatty", [sys.executable, "-c", _CHATTY], relay=True)
    await child.listening("grpc", timeout_s=30)
    assert child.ports == {"grpc": 4242}
    assert await child.stop(timeout_s=30) == 0
    relayed = capsys.readouterr().err.splitlines()
    numbered = [line for line in relayed if line.startswith("[chatty] line ")]
    assert numbered == [f"[chatty] line {index}" for index in range(RELAYED_LINES_KEPT * 3)]
    # The unterminated 150 kB line arrives in pieces no longer than the relay's line limit.
    assert sum(line.count("x") for line in relayed) == 150_000
    assert len(child.lines) == RELAYED_LINES_KEPT
    assert child.lines[-1].startswith("x")


def test_relay_and_log_files_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^relay: "):
        Child.start("both", [sys.executable, "-c", "pass"], relay=True, log=tmp_path / "x.log")
    with pytest.raises(ValueError, match=r"^log: "):
        Child.start("neither", [sys.executable, "-c", "pass"])
