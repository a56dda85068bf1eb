"""The README's grpcurl walkthrough, executed with the real grpcurl against a live stack.

The block after ``<!-- readme-walkthrough:grpcurl -->`` in README.md is a console session:
``$ command`` lines, each followed by its expected output. Ports are swapped for the live
stack's; every expected line must appear in the actual output, in order; a ``...`` line stands
for any lines; without ``...`` the output must match exactly. An expected ``ERROR:`` output
means the command must fail, anything else that it must succeed.

Usage:
    .venv/bin/pytest tests/test_readme_walkthrough.py
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev_stack.testing import LiveStack

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- readme-walkthrough:grpcurl -->"
ELIDED = "..."
_END = "@@walkthrough-end"


@dataclass(frozen=True)
class Step:
    command: str
    expected: list[str]


def walkthrough(readme: str) -> list[Step]:
    """The ``$ command`` / output pairs of the marked console block."""
    found = re.search(re.escape(MARKER) + r"\s*```console\n(.*?)\n```", readme, re.DOTALL)
    assert found, f"README.md has no ```console block after {MARKER}"
    steps: list[Step] = []
    for line in found.group(1).splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:], []))
        else:
            assert steps, "the walkthrough must start with a $ command"
            steps[-1].expected.append(line.rstrip())
    return steps


def matches(expected: list[str], actual: list[str]) -> bool:
    """Exact when nothing is elided; otherwise the expected lines are an ordered subsequence."""
    if ELIDED not in (line.strip() for line in expected):
        return expected == actual
    remaining = iter(actual)
    return all(
        any(line == candidate for candidate in remaining) for line in expected if line.strip() != ELIDED
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with LiveStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


def localize(text: str, stack: LiveStack) -> str:
    """README addresses -> the live stack's (its ports are free ones, not 50051 and 8080)."""
    grpc_port = stack.grpc_address.rsplit(":", 1)[1]
    issuer_port = stack.issuer_url.rsplit(":", 1)[1]
    venv_bin = shlex.quote(str(Path(sys.executable).parent))
    return (
        text.replace("localhost:50051", f"localhost:{grpc_port}")
        .replace("http://127.0.0.1:8080", f"http://127.0.0.1:{issuer_port}")
        .replace(".venv/bin/", f"{venv_bin}/")
    )


def test_the_walkthrough_covers_list_describe_health_and_secure_route() -> None:
    commands = " ".join(step.command for step in walkthrough((ROOT / "README.md").read_text()))
    for needle in (
        " list",
        " describe ",
        "/Health",
        "/SecureRoute",
        "authorization: Bearer",
        "dev_issuer token",
    ):
        assert needle in commands


def test_the_readme_grpcurl_walkthrough_runs_as_written(stack: LiveStack) -> None:
    steps = walkthrough((ROOT / "README.md").read_text())
    # One shell for the whole session, so TOKEN=$(...) carries over like in a terminal.
    script = "".join(f"{localize(step.command, stack)} 2>&1; echo {_END} $?\n" for step in steps)
    completed = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    chunks = completed.stdout.split(f"{_END} ")
    assert len(chunks) == len(steps) + 1, completed.stdout + completed.stderr
    for index, step in enumerate(steps):
        body = chunks[index] if index == 0 else chunks[index].split("\n", 1)[1]
        code = int(chunks[index + 1].split("\n", 1)[0])
        actual = [line.rstrip() for line in body.rstrip("\n").splitlines()]
        expected = [localize(line, stack) for line in step.expected]
        should_fail = bool(expected) and expected[0] == "ERROR:"
        assert (code != 0) == should_fail, f"$ {step.command}\nexit {code}\n{body}"
        assert matches(expected, actual), (
            f"$ {step.command}\nexpected:\n" + "\n".join(expected) + "\nactual:\n" + body
        )
