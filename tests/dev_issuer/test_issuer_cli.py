"""The command line: ``serve`` (as a real process), ``token`` and ``rotate`` against it, bind checks."""

from __future__ import annotations

import asyncio
import base64
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
from jwt_authn.dpop import access_token_hash

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
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ServedIssuer]]]:
    """``await serve(*extra_flags)``: ``python -m dev_issuer serve --listen 127.0.0.1:0 ...``."""
    started: list[ServedIssuer] = []

    async def start(*extra: str) -> ServedIssuer:
        issuer = await _serve(tmp_path / f"state{len(started)}", *extra)
        started.append(issuer)
        return issuer

    yield start
    for issuer in started:
        if issuer.process.returncode is None:
            issuer.process.kill()
            await issuer.process.wait()
        await issuer.log_complete


@pytest.fixture
async def served(serve: Callable[..., Awaitable[ServedIssuer]]) -> ServedIssuer:
    return await serve()


async def _serve(state_dir: Path, *extra: str) -> ServedIssuer:
    """The issuer as a real process; the URL is read from its log."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dev_issuer",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(state_dir),
        *extra,
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
    return ServedIssuer(url=url, process=process, log=log, log_complete=draining)


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

    # A rotation publishes the new keys at once but keeps signing with the old ones for the JWKS
    # max-age (60 s), so verifiers that cached the JWKS never meet an unknown kid...
    code, stdout, stderr = await run_cli("rotate", "--url", served.url)
    assert code == 0, stderr
    published = json.loads(stdout)
    assert {k["alg"] for k in published["added"]} == {"RS256", "ES256"}
    code, stdout, _ = await run_cli("token", "--issuer-url", served.url, "--alg", "ES256")
    header, _ = await verify(served.url, stdout.strip())
    assert header["kid"] in {k["kid"] for k in published["retiring"]}
    # ...and --immediate signs with the new keys at once.
    code, stdout, stderr = await run_cli("rotate", "--url", served.url, "--immediate")
    assert code == 0, stderr
    summary = json.loads(stdout)
    code, stdout, _ = await run_cli("token", "--issuer-url", served.url, "--alg", "ES256")
    header, _ = await verify(served.url, stdout.strip())
    assert header["kid"] in {k["kid"] for k in summary["added"]}
    assert any("signing from" in line and "(in 60 s, the JWKS max-age)" in line for line in served.log)

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


async def test_serve_scope_adds_scopes_and_token_asks_for_them_on_an_audience(
    serve: Callable[..., Awaitable[ServedIssuer]], verify: Verify
) -> None:
    # The Greeter example's scopes, so it can be tried end to end with the issuer's tokens.
    served = await serve("--scope", "greeter.hello", "--scope", "greeter.farewell")
    code, stdout, stderr = await run_cli(
        "token", "--issuer-url", served.url, "--audience", "greeter", "--scope", "greeter.farewell read"
    )
    assert code == 0, stderr
    _, claims = await verify(served.url, stdout.strip(), audience="greeter")
    assert (claims["aud"], claims["scope"]) == ("greeter", "greeter.farewell read")
    code, _, stderr = await run_cli("token", "--issuer-url", served.url, "--scope", "greeter.other")
    assert code == 1 and "invalid_scope" in stderr and "greeter.farewell" in stderr


async def test_serve_reads_scopes_from_the_toml_file_and_flags_win(
    serve: Callable[..., Awaitable[ServedIssuer]], tmp_path: Path, verify: Verify
) -> None:
    config = tmp_path / "issuer.toml"
    config.write_text('scopes = ["greeter.farewell"]\naudience = "greeter"\nttl = 120\n')
    served = await serve("--config", str(config), "--ttl", "300")
    code, stdout, stderr = await run_cli("token", "--issuer-url", served.url, "--scope", "greeter.farewell")
    assert code == 0, stderr
    _, claims = await verify(served.url, stdout.strip(), audience="greeter")
    assert claims["scope"] == "greeter.farewell"
    assert claims["exp"] - claims["iat"] == 300  # the flag over the file's 120


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('scope = ["x"]\n', "unknown key 'scope'"),
        ('scopes = "greeter.farewell"\n', "scopes: wrong type"),
        ("scopes = [1]\n", "scopes: must be a list of strings"),
        ('scopes = ["has space"]\n', "scopes: not a scope token"),
        ("ttl = true\n", "ttl: wrong type"),
        ('log_level = "LOUD"\n', "log_level: one of"),
        ("ttl = \n", "not valid TOML"),
    ],
)
def test_a_bad_toml_file_exits_2_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "issuer.toml"
    config.write_text(content)
    argv = ["serve", "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "s"), "--config", str(config)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


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


async def test_dpop_key_bound_token_and_proof(served: ServedIssuer, verify: Verify, tmp_path: Path) -> None:
    key_file = tmp_path / "dpop-key.json"
    code, stdout, stderr = await run_cli("dpop-key", "--out", str(key_file))
    assert code == 0, stderr
    jkt = stdout.strip()
    assert key_file.stat().st_mode & 0o777 == 0o600  # a private key: its owner's only
    assert json.loads(key_file.read_text())["d"] not in stdout
    # Never overwritten: a second key would strand every token bound to the first.
    code, _, stderr = await run_cli("dpop-key", "--out", str(key_file))
    assert code == 2
    assert "out:" in stderr

    code, stdout, stderr = await run_cli(
        "token", "--issuer-url", served.url, "--sub", "alice", "--dpop-key", str(key_file)
    )
    assert code == 0, stderr
    token = stdout.strip()
    _, claims = await verify(served.url, token)
    assert claims["cnf"] == {"jkt": jkt}

    url = "http://127.0.0.1:8081/v1/hello"
    code, stdout, stderr = await run_cli(
        "proof", "--dpop-key", str(key_file), "--htm", "GET", "--htu", url, "--token", token
    )
    assert code == 0, stderr
    header, payload = (
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        for part in stdout.strip().split(".")[:2]
    )
    assert header["typ"] == "dpop+jwt"
    assert "d" not in header["jwk"]
    assert (payload["htm"], payload["htu"]) == ("GET", url)
    assert payload["ath"] == access_token_hash(token)
    assert not any(token in line for line in served.log), "the issuer logged a token"
