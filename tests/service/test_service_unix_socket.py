"""``--listen-unix PATH``: the service also answers on a Unix socket, and refuses paths it must not use.

The server is the real one (``build_server``) on a socket under ``tmp_path``; a grpc.aio client
dials ``unix:PATH``. Bad paths run ``python -m service`` to its end: exit 2, one line.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from helpers import secureroute_stub

from jwt_authn.testing import LoopbackIssuer
from runtime.settings import SettingsError
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings, build_server

WAIT_S = 15.0
ISSUER = "https://idp.example.com/"
BASE = ("--issuer", ISSUER, "--audiences", "secureroute", "--listen", "127.0.0.1:0")

StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
MakeSettings = Callable[..., ServiceSettings]
AssertBadSetting = Callable[..., None]


def _stub(channel: grpc.aio.Channel) -> Any:
    return secureroute_stub(channel)


async def _health_message(channel: grpc.aio.Channel) -> str:
    return str((await _stub(channel).Health(secureroute_pb2.HealthRequest(), timeout=WAIT_S)).message)


@pytest.fixture
def live_socket(tmp_path: Path) -> Iterator[Path]:
    """A path some other server listens on (it never accepts: the kernel's backlog answers)."""
    path = tmp_path / "taken.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        yield path


async def test_serves_on_the_unix_socket_and_on_tcp(
    tmp_path: Path, issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    path = tmp_path / "svc.sock"
    app = await start_service(make_service_settings(issuer.url, "--listen-unix", str(path)))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    assert stat.S_ISSOCK(path.lstat().st_mode)
    token = issuer.tokens.issue(sub="local")
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        assert await _health_message(channel) == "Healthy"
        bearer = [("authorization", f"Bearer {token}")]
        request = secureroute_pb2.SecureRouteRequest()
        reply = await _stub(channel).SecureRoute(request, metadata=bearer, timeout=WAIT_S)
        assert (reply.message, reply.subject) == ("Super secret stuff", "local")
        # Same server, same rules: no token, no answer.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(channel).SecureRoute(secureroute_pb2.SecureRouteRequest(), timeout=WAIT_S)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        assert await _health_message(channel) == "Healthy"

    await app.stop(0)
    assert not path.exists()


async def test_a_stale_socket_is_replaced(
    tmp_path: Path, issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    path = tmp_path / "svc.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(str(path))  # bound, then closed: what a killed process leaves behind
    app = await start_service(make_service_settings(issuer.url, "--listen-unix", str(path)))
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        assert await _health_message(channel) == "Healthy"
    await app.stop(0)
    assert not path.exists()


async def test_stop_leaves_a_file_that_is_no_longer_our_socket(
    tmp_path: Path, issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    path = tmp_path / "svc.sock"
    app = await start_service(make_service_settings(issuer.url, "--listen-unix", str(path)))
    path.unlink()
    path.write_text("someone else's")  # e.g. an operator reused the path while we drained
    await app.stop(0)
    assert path.read_text() == "someone else's"


def test_a_live_socket_is_not_taken_over(
    live_socket: Path, issuer: LoopbackIssuer, make_service_settings: MakeSettings
) -> None:
    # grpc-core would silently unlink it and bind in its place.
    settings = make_service_settings(issuer.url, "--listen-unix", str(live_socket))
    with pytest.raises(SettingsError, match=r"^listen_unix: a server already listens on"):
        build_server(settings)


@pytest.mark.parametrize(
    ("make_args", "problem"),
    [
        pytest.param(lambda tmp: ("--listen-unix", "svc.sock"), "absolute", id="relative-path"),
        pytest.param(lambda tmp: ("--listen-unix", f"{tmp}/no/svc.sock"), "no such directory", id="no-dir"),
        pytest.param(lambda tmp: ("--listen-unix", f"{tmp}/{'a' * 120}"), "at most 107 bytes", id="too-long"),
        pytest.param(
            lambda tmp: ("--listen-unix", f"{tmp}/svc.sock", "--workers", "2"), "workers", id="workers"
        ),
    ],
)
def test_bad_paths_exit_2(
    tmp_path: Path, make_args: Callable[[Path], tuple[str, ...]], problem: str, run_main: Any
) -> None:
    result = run_main("service", *BASE, *make_args(tmp_path))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("secureroute-service: error: listen_unix:") and problem in line, line
    assert not (tmp_path / "svc.sock").exists()


def test_a_regular_file_is_never_clobbered(tmp_path: Path, assert_bad_setting: AssertBadSetting) -> None:
    path = tmp_path / "svc.sock"
    path.write_text("precious")
    assert_bad_setting("service", *BASE, "--listen-unix", str(path), setting="listen_unix")
    assert path.read_text() == "precious"


def test_a_live_socket_exits_2(live_socket: Path, assert_bad_setting: AssertBadSetting) -> None:
    assert_bad_setting("service", *BASE, "--listen-unix", str(live_socket), setting="listen_unix")


def test_the_env_var_and_toml_key(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(f'issuer = "{ISSUER}"\naudiences = "a"\nlisten_unix = "{tmp_path}/toml.sock"\n')
    assert ServiceSettings.load([], environ={"SECUREROUTE_CONFIG": str(config)}).grpc.listen_unix == (
        f"{tmp_path}/toml.sock"
    )
    env = {"SECUREROUTE_CONFIG": str(config), "SECUREROUTE_GRPC_LISTEN_UNIX": f"{tmp_path}/env.sock"}
    assert ServiceSettings.load([], environ=env).grpc.listen_unix == f"{tmp_path}/env.sock"
    assert ServiceSettings.load(["--issuer", ISSUER, "--audiences", "a"], environ={}).grpc.listen_unix is None
