"""The README's settings tables are generated from the settings tables and must not drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.settings import settings_of
from tools.settings_doc import (
    BEGIN,
    END,
    GUARD_README,
    PROGRAMS,
    VARIABLES,
    render_tables,
    render_variables,
    replace_guard_tables,
    replace_tables,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tables_are_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_tables(text) == text, "run: python -m tools.settings_doc --write README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index(BEGIN) : text.index(END)]
    for row in (row for cls in PROGRAMS for row in settings_of(cls)):
        assert f"`{row.env}`" in table and f"`{row.flag}`" in table


def test_check_mode_fails_on_a_stale_copy(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{BEGIN}\nold table\n{END}\noutro\n", encoding="utf-8")
    command = [sys.executable, "-m", "tools.settings_doc"]
    assert subprocess.run([*command, "--check", str(stale)], capture_output=True, check=False).returncode == 1
    assert subprocess.run([*command, "--write", str(stale)], check=False).returncode == 0
    assert stale.read_text(encoding="utf-8") == f"intro\n{render_tables()}\noutro\n"
    assert subprocess.run([*command, "--check", str(stale)], check=False).returncode == 0


def test_missing_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_tables("no markers here")


def test_the_guard_readme_tables_and_the_known_variables_are_current() -> None:
    guard = GUARD_README.read_text(encoding="utf-8")
    assert replace_guard_tables(guard) == guard, "run: python -m tools.settings_doc --write README.md"
    assert VARIABLES.read_text(encoding="utf-8") == render_variables()
