"""``python -m service`` as a real process: --help, settings precedence, bad settings, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jwt_authn.testing import LoopbackIssuer
from runtime.listen import ListenAddress
from runtime.settings import SettingsError, settings_of
from service.settings import ServiceSettings, authn_config

WAIT_S = 15.0
ISSUER = "https://idp.example.com/"


RunMain = Callable[..., subprocess.CompletedProcess[str]]
AssertBadSetting = Callable[..., None]


def test_help_explains_every_setting(run_main: RunMain) -> None:
    result = run_main("service", "--help")
    assert result.returncode == 0
    for row in settings_of(ServiceSettings):
        assert row.flag in result.stdout
        assert row.env in result.stdout
    assert "--config" in result.stdout and "SECUREROUTE_CONFIG" in result.stdout


def test_console_script_is_installed() -> None:
    script = shutil.which("secureroute-service", path=os.path.dirname(sys.executable))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert result.returncode == 0 and "--issuer" in result.stdout


BASE = ("--issuer", ISSUER, "--audiences", "secureroute", "--listen", "127.0.0.1:0")


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        pytest.param(("--audiences", "a", "--listen", "127.0.0.1:0"), {}, "issuer", id="missing-issuer"),
        pytest.param(("--issuer", ISSUER, "--listen", "127.0.0.1:0"), {}, "audiences", id="missing-audience"),
        pytest.param((*BASE, "--listen", "nonsense"), {}, "listen", id="listen-no-port"),
        pytest.param((*BASE, "--listen", "127.0.0.1:70000"), {}, "listen", id="listen-port-range"),
        pytest.param((*BASE, "--listen", "::1:50051"), {}, "listen", id="listen-unbracketed-ipv6"),
        pytest.param((*BASE, "--jwks-uri", "ftp://keys.example.com/jwks"), {}, "jwks_uri", id="bad-url"),
        pytest.param((*BASE, "--jwks-file", "/no/such/jwks.json"), {}, "jwks_file", id="missing-file"),
        pytest.param((*BASE, "--leeway-s", "-1"), {}, "leeway_s", id="negative-leeway"),
        pytest.param((*BASE, "--grace-period-s", "-5"), {}, "grace_period_s", id="negative-grace"),
        pytest.param((*BASE, "--grace-period-s", "soon"), {}, "grace_period_s", id="not-a-duration"),
        pytest.param((*BASE, "--algorithms", "RS256,HS256"), {}, "algorithms", id="hmac-algorithm"),
        pytest.param((*BASE, "--algorithms", "none"), {}, "algorithms", id="none-algorithm"),
        pytest.param((*BASE, "--log-level", "chatty"), {}, "log_level", id="bad-log-level"),
        pytest.param((*BASE, "--bogus"), {}, "arguments", id="unknown-flag"),
        pytest.param(BASE, {"SECUREROUTE_LEEWAY_S": "abc"}, "leeway_s", id="bad-env-var"),
        pytest.param(BASE, {"SECUREROUTE_ALLOW_ANY_AUDIENCE": "maybe"}, "allow_any_audience", id="bad-bool"),
        pytest.param(BASE, {"SECUREROUTE_CONFIG": "/no/such/config.toml"}, "config", id="missing-config"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    args: tuple[str, ...], env: dict[str, str], setting: str, assert_bad_setting: AssertBadSetting
) -> None:
    assert_bad_setting("service", *args, setting=setting, env=env)


def test_port_in_use_exits_2_with_one_line(busy_port: int, assert_bad_setting: AssertBadSetting) -> None:
    args = ("--issuer", ISSUER, "--audiences", "secureroute", "--listen", f"127.0.0.1:{busy_port}")
    assert_bad_setting("service", *args, setting="listen")


def test_bad_toml_exits_2(tmp_path: Path, run_main: RunMain) -> None:
    config = tmp_path / "service.toml"
    config.write_text("issuer = [unclosed\n")
    result = run_main("service", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0].startswith("secureroute-service: error: config:")
    config.write_text('issuer = "x"\nmystery = 1\n')
    result = run_main("service", "--config", str(config))
    assert result.returncode == 2 and "mystery" in result.stderr


def test_precedence_flag_env_toml_default(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        f'issuer = "{ISSUER}"\naudiences = ["from-toml", "second"]\nleeway_s = 5\ngrace_period_s = 3\n'
        'listen = "127.0.0.1:7000"\n'
    )
    env = {
        "SECUREROUTE_CONFIG": str(config),
        "SECUREROUTE_LEEWAY_S": "7",
        "SECUREROUTE_GRPC_LISTEN": "127.0.0.1:7001",
    }
    settings = ServiceSettings.load(["--listen", "127.0.0.1:7002"], environ=env)
    assert settings.grpc.listen == ListenAddress("127.0.0.1", 7002)  # flag beats env and TOML
    assert settings.leeway_s == 7.0  # env beats TOML
    assert settings.grace_period_s == 3.0  # TOML beats default
    assert settings.audiences == ("from-toml", "second")  # TOML lists are fine
    assert settings.log_level == "INFO"  # default
    assert settings.issuer == ISSUER


def test_defaults_and_comma_separated_values() -> None:
    settings = ServiceSettings.load(
        ["--issuer", ISSUER, "--audiences", "a, b", "--algorithms", "ES256,EdDSA"], environ={}
    )
    assert settings.grpc.listen == ListenAddress("::", 50051)
    assert str(settings.grpc.listen) == "[::]:50051"
    assert settings.grace_period_s == 10.0
    assert settings.audiences == ("a", "b")
    config = authn_config(settings)
    assert config.issuers[0].algorithms == ("ES256", "EdDSA")
    assert "/secureroute.v1.SecureRouteService/Health" in config.policy.public_methods
    assert not config.policy.is_public("/secureroute.v1.SecureRouteService/SecureRoute")


def test_allow_any_audience_replaces_the_audience_requirement() -> None:
    settings = ServiceSettings.load(["--issuer", ISSUER, "--allow-any-audience"], environ={})
    assert authn_config(settings).issuers[0].allow_any_audience
    with pytest.raises(ValueError, match=r"^audiences: "):
        authn_config(ServiceSettings.load(["--issuer", ISSUER], environ={}))
    with pytest.raises(SettingsError, match=r"^issuer: required"):
        ServiceSettings.load([], environ={})


async def _read_port(stderr: asyncio.StreamReader) -> int:
    while line := (await stderr.readline()).decode():
        found = re.search(r"listening on \S+:(\d+) \(grpc\)", line)
        if found:
            return int(found.group(1))
    raise AssertionError("the service exited before it listened")


async def test_sigterm_drains_and_exits_0(
    issuer: LoopbackIssuer, make_env: Callable[..., dict[str, str]]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "--listen", "127.0.0.1:0", "--issuer", issuer.url,
        "--audiences", "secureroute", "--grace-period-s", "2",
        env=make_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        port = await asyncio.wait_for(_read_port(process.stderr), WAIT_S)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="secureroute.v1.SecureRouteService"))
            status = (await asyncio.wait_for(watch.read(), WAIT_S)).status
            if status != health_pb2.HealthCheckResponse.SERVING:  # still loading the key set
                status = (await asyncio.wait_for(watch.read(), WAIT_S)).status
            assert status == health_pb2.HealthCheckResponse.SERVING

            process.send_signal(signal.SIGTERM)
            # The open Watch (an in-flight call) sees NOT_SERVING before the server goes away.
            after = await asyncio.wait_for(watch.read(), WAIT_S)
            assert after.status == health_pb2.HealthCheckResponse.NOT_SERVING
        rest = await asyncio.wait_for(process.stderr.read(), WAIT_S)
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
        assert b"Traceback" not in rest
        assert b"stopped" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
