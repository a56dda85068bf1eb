"""What ``make run`` and ``make test`` install, read from ``make -n`` on a fresh (absent) venv.

``make run`` installs the runtime dependencies and grpcurl only: no [dev] extra, no npm tools.
Once installed, it runs the stack without touching the network (the stamp is newer than
pyproject.toml, so nothing is installed again). ``make test`` installs everything it needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str, venv: Path) -> str:
    """The commands ``make target`` would run, with the venv elsewhere."""
    argv = ["make", "-n", "--no-print-directory", f"VENV={venv}", target]
    # Run under `make test` too: the outer make's variables must not reach this one.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    completed = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=30, check=True, env=env
    )
    return completed.stdout


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    commands = _dry_run("run", tmp_path / "venv")
    assert "pip install --quiet -e ./jwt_authn -e '.[client]'" in commands
    assert "[dev]" not in commands and "npm" not in commands, commands
    assert commands.rstrip().endswith("-m dev_stack")


def test_make_run_installs_nothing_once_installed(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".runtime-installed").touch()  # newer than pyproject.toml
    assert _dry_run("run", venv).splitlines() == [f"{venv}/bin/python -m dev_stack"]


def test_make_test_installs_the_dev_extra(tmp_path: Path) -> None:
    commands = _dry_run("pytest", tmp_path / "venv")
    assert "pip install --quiet -e ./examples -e '.[dev]'" in commands
