"""The benchmark's contract: what ``python -m bench --quick`` writes.

A quick run is a smoke run: one short round of every section against the real stack on loopback.
What is checked is the page it writes, never a figure's size (the machine is shared): the same
sections and the same target rows as the committed docs/benchmarks.md, every target measured,
no failed call, and the label that says its figures are not to be quoted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "benchmarks.md"


def _headings(text: str) -> list[str]:
    return re.findall(r"^##? .+$", text, flags=re.MULTILINE)


def _targets(text: str) -> dict[str, tuple[str, str]]:
    """Target name -> (measured, result), from the Targets table."""
    table = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0].removeprefix("| "): (row[1], row[3].removesuffix(" |")) for row in rows[1:]}


def _load_rows(text: str) -> dict[str, int]:
    """Scenario -> its "failed calls", from every load table."""
    rows = {}
    for table in re.findall(r"\| scenario \| req/s .*?\n\n", text, flags=re.DOTALL):
        for line in table.strip().splitlines()[2:]:
            cells = line.split(" | ")
            rows[cells[0].removeprefix("| ")] = int(cells[5])
    return rows


def _bench(tmp_path: Path, *args: str, timeout_s: float) -> str:
    output = tmp_path / "benchmarks.md"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-install", "--output", str(output), *args],
        cwd=ROOT,
        check=True,
        timeout=timeout_s,
    )
    return output.read_text(encoding="utf-8")


def test_a_validation_only_run_writes_every_section_and_says_what_it_skipped(tmp_path: Path) -> None:
    text = _bench(tmp_path, "--only", "validation", timeout_s=110)
    committed = COMMITTED.read_text(encoding="utf-8")
    # Every numbered section is there, in the committed page's order (its notes may differ).
    assert [h for h in _headings(committed) if h in _headings(text)] == _headings(text)
    assert len([h for h in _headings(text) if re.match(r"## \d", h)]) == 6
    measured = _targets(text)
    assert list(measured) == list(_targets(committed))
    assert measured["RS256 cold validation / raw cryptography verify"][1] in {"pass", "**miss**"}
    assert measured["gRPC guard on / off, SecureRoute reused token, req/s (h2load)"][1] == "not measured"
    assert "## 2. gRPC: the guard on and off, and the Python peer\n\nNot run: not selected (--only)." in text
    assert "**Smoke run**" in text


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("h2load", "nghttp", "wrk", "node")),
    reason="h2load, nghttp, wrk and node are installed by `make bench`",
)
@pytest.mark.timeout(600)
def test_a_quick_run_measures_every_target_with_no_failed_call(tmp_path: Path) -> None:
    text = _bench(tmp_path, timeout_s=580)
    committed = COMMITTED.read_text(encoding="utf-8")
    # Notes depend on the machine (a tool's version, a peer not installed): every other section is fixed.
    assert [h for h in _headings(text) if h != "## Notes"] == [
        h for h in _headings(committed) if h != "## Notes"
    ]
    measured = _targets(text)
    assert list(measured) == list(_targets(committed))
    unmeasured = [
        name for name, (value, result) in measured.items() if "n/a" in value or result == "not measured"
    ]
    expected_rows = set(_load_rows(committed))
    # `make bench` installs the Express peer's packages; a quick run without them skips its rows.
    if not (ROOT / "bench" / "peers" / "express" / "node_modules" / "express-jwt").is_dir():
        unmeasured = [name for name in unmeasured if "Express" not in name]
        expected_rows = {row for row in expected_rows if not row.startswith("express ")}
    assert unmeasured == []
    rows = _load_rows(text)
    assert expected_rows <= set(rows)  # every load the committed page shows was run
    assert set(rows.values()) == {0}  # and no call failed
