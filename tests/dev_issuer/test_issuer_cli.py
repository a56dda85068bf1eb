"""The command line: ``serve`` (as a real process), ``token`` and ``rotate`` against it, bind checks."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from issuer_helpers import WAIT_S

from dev_issuer.cli import main
from dev_issuer.config import check_bind_host

ROOT = Path(__file__).resolve().parents[2]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


@dataclass
class ServedIssuer:
    url: str
    process: asyncio.subprocess.Process
    log: list[str]
    #: Finishes when the process's stderr reaches EOF, i.e. the whole log is in ``log``.
    log_complete: asyncio.Task[None]


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dev_issuer",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedIssuer]:
    """``python -m dev_issuer serve --listen 127.0.0.1:0``; the URL is read from its log."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dev_issuer",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(tmp_path / "state"),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    url = None
    async with asyncio.timeout(WAIT_S):
        while url is None:
            line = (await process.stderr.readline()).decode()
            assert line, f"issuer exited early: {''.join(log)}"
            log.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            url = found.group(1) if found else None

    async def drain() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.append(line.decode())

    draining = asyncio.create_task(drain())
    yield ServedIssuer(url=url, process=process, log=log, log_complete=draining)
    if process.returncode is None:
        process.kill()
        await process.wait()
    await draining


async def test_serve_token_rotate_and_sigterm(served: ServedIssuer, verify: Verify) -> None:
    assert any("DEVELOPMENT ONLY" in line for line in served.log)
    code, stdout, stderr = await run_cli(
        "token",
        "--issuer-url",
        served.url,
        "--sub",
        "alice",
        "--scope",
        "read write",
        "--role",
        "admin",
        "--ttl",
        "600",
    )
    assert code == 0, stderr
    token = stdout.strip()
    assert stdout == token + "\n"  # only the token, for $(...)
    header, claims = await verify(served.url, token)
    assert header["typ"] == "at+jwt"
    assert (claims["sub"], claims["scope"], claims["roles"]) == ("alice", "read write", ["admin"])
    assert claims["exp"] - claims["iat"] == 600

    code, stdout, stderr = await run_cli("rotate", "--url", served.url)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert {k["alg"] for k in summary["added"]} == {"RS256", "ES256"}
    code, stdout, _ = await run_cli("token", "--issuer-url", served.url, "--alg", "ES256")
    header, _ = await verify(served.url, stdout.strip())
    assert header["kid"] in {k["kid"] for k in summary["added"]}

    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), WAIT_S) == 0
    await asyncio.wait_for(served.log_complete, WAIT_S)
    assert any("stopping" in line for line in served.log)
    assert not any(token in line for line in served.log), "the issuer logged a token"


async def test_token_command_reports_refusals_on_stderr(served: ServedIssuer) -> None:
    code, stdout, stderr = await run_cli("token", "--issuer-url", served.url, "--client-secret", "wrong")
    assert code == 1
    assert stdout == ""
    assert "invalid_client" in stderr
    code, stdout, stderr = await run_cli("token", "--issuer-url", served.url, "--scope", "root")
    assert (code, stdout) == (1, "")
    assert "invalid_scope" in stderr


async def test_token_command_reports_an_issuer_that_is_down(unused_port: Callable[[], int]) -> None:
    code, stdout, stderr = await run_cli("token", "--issuer-url", f"http://127.0.0.1:{unused_port()}")
    assert (code, stdout) == (1, "")
    assert "cannot reach" in stderr


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.10:8080", "example.com:8080"])
def test_non_loopback_bind_is_refused_without_the_flag(
    listen: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--listen", listen]) == 2
    assert "--allow-non-loopback" in capsys.readouterr().err


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:http", "127.0.0.1:70000"])
def test_bad_listen_values_are_refused(listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--listen", listen]) == 2
    assert "listen" in capsys.readouterr().err


def test_the_flag_allows_a_wider_bind() -> None:
    check_bind_host("0.0.0.0", allow_non_loopback=True)  # noqa: S104 - that is the point
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        check_bind_host(host, allow_non_loopback=False)
