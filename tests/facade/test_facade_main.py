"""``python -m http_facade`` as a real process: --help, bad settings, serving, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest

from http_facade.settings import FACADE_SETTINGS, load_facade_settings
from secureroute.settings import ListenAddress

WAIT_S = 15.0


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREROUTE_")}
    env.update(extra)
    return env


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "http_facade", *args],
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_help_explains_every_setting() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for row in FACADE_SETTINGS:
        assert row.flag in result.stdout and row.env in result.stdout


def test_defaults() -> None:
    settings = load_facade_settings([], environ={})
    assert settings.listen == ListenAddress("0.0.0.0", 3000)  # noqa: S104
    assert settings.backend == "localhost:50051"
    assert settings.backend_timeout == 5.0
    env = {"SECUREROUTE_BACKEND": "dns:///svc:50051", "SECUREROUTE_BACKEND_TIMEOUT": "2.5s"}
    settings = load_facade_settings(["--listen", "[::1]:8080"], environ=env)
    assert settings.listen == ListenAddress("::1", 8080)
    assert settings.backend == "dns:///svc:50051"
    assert settings.backend_timeout == 2.5


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        pytest.param(("--listen", "3000"), {}, "listen", id="listen-no-host"),
        pytest.param(("--listen", "bad host:3000"), {}, "listen", id="listen-bad-host"),
        pytest.param(("--backend", "localhost"), {}, "backend", id="backend-no-port"),
        pytest.param(("--backend-timeout", "0"), {}, "backend_timeout", id="zero-timeout"),
        pytest.param(("--backend-timeout", "-1"), {}, "backend_timeout", id="negative-timeout"),
        pytest.param((), {"SECUREROUTE_BACKEND_TIMEOUT": "fast"}, "backend_timeout", id="bad-env-var"),
        pytest.param(("--log-level", "loud"), {}, "log_level", id="bad-log-level"),
    ],
)
def test_bad_settings_exit_2_with_one_line(args: tuple[str, ...], env: dict[str, str], setting: str) -> None:
    result = _run(*args, env=_clean_env(**env))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"secureroute-facade: error: {setting}:"), lines[0]


def test_port_in_use_exits_2_with_one_line(busy_port: int) -> None:
    result = _run("--listen", f"127.0.0.1:{busy_port}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("secureroute-facade: error: listen:"), result.stderr


async def test_serves_then_exits_0_on_sigterm(http: aiohttp.ClientSession) -> None:
    # The backend is down on purpose: the facade must still start, and answer 503.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http_facade", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1",
        env=_clean_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        port = None
        while line := (await asyncio.wait_for(process.stderr.readline(), WAIT_S)).decode():
            if found := re.search(r"listening on \S+:(\d+)", line):
                port = int(found.group(1))
                break
        assert port is not None, "the facade exited before it listened"
        async with http.get(f"http://127.0.0.1:{port}/health") as response:
            assert response.status == 503
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
