"""``python -m http_facade`` as a real process: --help, bad settings, serving, SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import aiohttp
import pytest

from http_facade.settings import FacadeSettings
from runtime.listen import ListenAddress
from runtime.settings import settings_of

WAIT_S = 15.0

RunMain = Callable[..., subprocess.CompletedProcess[str]]
AssertBadSetting = Callable[..., None]


def test_help_explains_every_setting(run_main: RunMain) -> None:
    result = run_main("http_facade", "--help")
    assert result.returncode == 0
    for row in settings_of(FacadeSettings):
        assert row.flag in result.stdout and row.env in result.stdout


def test_defaults() -> None:
    settings = FacadeSettings.load([], environ={})
    assert settings.http.listen == ListenAddress("0.0.0.0", 3000)  # noqa: S104
    assert settings.backend == "localhost:50051"
    assert settings.backend_timeout_s == 5.0
    env = {"SECUREROUTE_BACKEND": "dns:///svc:50051", "SECUREROUTE_BACKEND_TIMEOUT_S": "2.5s"}
    settings = FacadeSettings.load(["--listen", "[::1]:8080"], environ=env)
    assert settings.http.listen == ListenAddress("::1", 8080)
    assert settings.backend == "dns:///svc:50051"
    assert settings.backend_timeout_s == 2.5


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        pytest.param(("--listen", "3000"), {}, "listen", id="listen-no-host"),
        pytest.param(("--listen", "bad host:3000"), {}, "listen", id="listen-bad-host"),
        pytest.param(("--backend", "localhost"), {}, "backend", id="backend-no-port"),
        pytest.param(("--backend-timeout-s", "0"), {}, "backend_timeout_s", id="zero-timeout"),
        pytest.param(("--backend-timeout-s", "-1"), {}, "backend_timeout_s", id="negative-timeout"),
        pytest.param((), {"SECUREROUTE_BACKEND_TIMEOUT_S": "fast"}, "backend_timeout_s", id="bad-env-var"),
        pytest.param(("--log-level", "loud"), {}, "log_level", id="bad-log-level"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    args: tuple[str, ...], env: dict[str, str], setting: str, assert_bad_setting: AssertBadSetting
) -> None:
    assert_bad_setting("http_facade", *args, setting=setting, env=env)


def test_port_in_use_exits_2_with_one_line(busy_port: int, assert_bad_setting: AssertBadSetting) -> None:
    assert_bad_setting("http_facade", "--listen", f"127.0.0.1:{busy_port}", setting="listen")


async def test_serves_then_exits_0_on_sigterm(
    http: aiohttp.ClientSession, make_env: Callable[..., dict[str, str]]
) -> None:
    # The backend is down on purpose: the facade must still start, and answer 503.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http_facade", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1",
        env=make_env(), stderr=asyncio.subprocess.PIPE,
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
