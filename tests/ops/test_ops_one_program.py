"""``python -m secureroute``, the one program, as a real process: both transports, one guard,
bad listeners, workers, SIGTERM draining both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import port_refused, secureroute_stub

from dev_stack.children import Child
from jwt_authn.testing import LoopbackIssuer
from runtime.listen import ListenAddress
from runtime.settings import settings_of
from secureroute.settings import SecureRouteSettings, split_settings
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc
from tests.ops.conftest import Spawn

WAIT_S = 15.0
ISSUER = "https://idp.example.com/"
BASE = (
    "--issuer",
    ISSUER,
    "--audiences",
    "secureroute",
    "--grpc-listen",
    "127.0.0.1:0",
    "--http-listen",
    "127.0.0.1:0",
)

RunMain = Callable[..., subprocess.CompletedProcess[str]]
AssertBadSetting = Callable[..., None]


def test_help_explains_every_setting(run_main: RunMain) -> None:
    result = run_main("secureroute", "--help")
    assert result.returncode == 0
    for row in settings_of(SecureRouteSettings):
        assert row.flag in result.stdout and row.env in result.stdout


def test_console_script_is_installed() -> None:
    script = shutil.which("secureroute", path=os.path.dirname(sys.executable))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert result.returncode == 0 and "--grpc-listen" in result.stdout and "--http-listen" in result.stdout


def test_the_split_programs_settings_come_through() -> None:
    settings = SecureRouteSettings.load(
        [*BASE, "--backend-timeout-s", "2", "--grace-period-s", "3", "--http-max-connections", "7"],
        environ={"SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS": "900"},
    )
    service, facade = split_settings(settings)
    assert service.grpc.listen == facade.http.listen == ListenAddress("127.0.0.1", 0)
    assert service.grpc.max_concurrent_rpcs == 900 and facade.http.max_connections == 7
    assert service.grace_period_s == facade.grace_period_s == 3.0
    assert facade.backend_timeout_s == 2.0
    assert facade.http.metrics_listen is None  # one metrics listener: metrics_listen
    assert service.audiences == ("secureroute",)


@pytest.mark.parametrize(
    ("which", "setting"), [("--grpc-listen", "grpc_listen"), ("--http-listen", "http_listen")]
)
def test_a_busy_listener_exits_2_naming_it(
    which: str, setting: str, busy_port: int, assert_bad_setting: AssertBadSetting
) -> None:
    assert_bad_setting("secureroute", *BASE, which, f"127.0.0.1:{busy_port}", setting=setting)


def test_a_busy_metrics_port_exits_2(busy_port: int, assert_bad_setting: AssertBadSetting) -> None:
    assert_bad_setting(
        "secureroute", *BASE, "--metrics-listen", f"127.0.0.1:{busy_port}", setting="metrics_listen"
    )


def test_the_one_program_offers_no_workers(assert_bad_setting: AssertBadSetting) -> None:
    assert_bad_setting("secureroute", *BASE, "--workers", "2", setting="arguments")


def test_a_second_metrics_listener_is_refused(assert_bad_setting: AssertBadSetting, tmp_path: Path) -> None:
    # The one program has one admin listener, metrics_listen: the facade's flag and key are not its own.
    assert_bad_setting("secureroute", *BASE, "--http-metrics-listen", "127.0.0.1:9", setting="arguments")
    config = tmp_path / "one.toml"
    config.write_text('http_metrics_listen = "127.0.0.1:9"\n')
    assert_bad_setting("secureroute", *BASE, "--config", str(config), setting="config")


Clients = tuple[grpc.aio.Channel, secureroute_pb2_grpc.SecureRouteServiceStub, aiohttp.ClientSession]


@contextlib.asynccontextmanager
async def _clients(
    grpc_port: int,
) -> AsyncIterator[
    tuple[grpc.aio.Channel, secureroute_pb2_grpc.SecureRouteServiceStub, aiohttp.ClientSession]
]:
    """A gRPC channel and stub to the program, and an HTTP session."""
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http,
    ):
        stub = secureroute_stub(channel)
        yield channel, stub, http


async def test_serves_both_then_sigterm_drains_both(issuer: LoopbackIssuer, spawn: Spawn) -> None:
    program = await spawn(
        "secureroute", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--issuer", issuer.url, "--audiences", "secureroute", "--grace-period-s", "2",
        "--drain-delay-s", "0.5",
    )  # fmt: skip
    await program.listening("grpc", "http", timeout_s=WAIT_S)
    token = issuer.tokens.issue(sub="dana")
    async with _clients(program.ports["grpc"]) as (channel, stub, http):
        reply = await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(),
            metadata=[("authorization", f"Bearer {token}")],
            timeout=WAIT_S,
        )
        assert reply.subject == "dana"
        url = f"http://127.0.0.1:{program.ports['http']}"
        async with http.get(f"{url}/secure-route", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
        async with http.get(f"{url}/secure-route") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await asyncio.wait_for(watch.read(), WAIT_S)).status == health_pb2.HealthCheckResponse.SERVING

        program.send_signal(signal.SIGTERM)
        after = await asyncio.wait_for(watch.read(), WAIT_S)
        assert after.status == health_pb2.HealthCheckResponse.NOT_SERVING
        # The drain delay: HTTP still answers after NOT_SERVING.
        async with http.get(f"{url}/health") as response:
            assert response.status == 200
    assert await program.wait(WAIT_S) == 0, program.tail()
    messages = [record["message"] for record in program.records]
    assert "Traceback" not in "\n".join(program.lines) and "stopped" in messages


#: ``python -c`` driver: the one program, one of whose transports stops by itself on SIGUSR1 (the
#: gRPC server's or the HTTP listener's own public ``stop``), as a crashed transport would.
_FAIL_ON_SIGUSR1 = """
import asyncio, signal, sys
from secureroute import program

which = sys.argv.pop(1)
start_both = program._start

async def start_then_fail_on_sigusr1(service, facade):
    await start_both(service, facade)
    stop = {"grpc": lambda: service.server.stop(0), "http": facade.stop}[which]
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(stop()))

program._start = start_then_fail_on_sigusr1
program.main()
"""


@pytest.mark.parametrize("which", ["grpc", "http"])
async def test_a_transport_that_stops_alone_is_logged_and_exits_1(
    which: str, issuer: LoopbackIssuer, make_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    program = Child.start(
        "secureroute",
        [sys.executable, "-c", _FAIL_ON_SIGUSR1, which, "--grpc-listen", "127.0.0.1:0", "--http-listen",
         "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute", "--drain-delay-s", "0"],
        log=tmp_path / "secureroute.log", env=make_env(),
    )  # fmt: skip
    try:
        await program.listening("grpc", "http", timeout_s=WAIT_S)
        grpc_port, http_port = program.ports["grpc"], program.ports["http"]
        async with _clients(grpc_port) as (_channel, stub, http):
            await stub.Health(secureroute_pb2.HealthRequest(), timeout=WAIT_S)
            async with http.get(f"http://127.0.0.1:{http_port}/health") as response:
                assert response.status == 200
        program.send_signal(signal.SIGUSR1)
        assert await program.wait(WAIT_S) == 1, program.tail()
        rest = "\n".join(program.lines)
        assert f"the {which} transport stopped by itself; stopping the other" in rest
        assert "Traceback" not in rest and "stopped" in rest
        # The other one was drained and closed too: nothing is left listening.
        assert await port_refused(grpc_port) and await port_refused(http_port)
    finally:
        await program.stop(signal.SIGKILL)


async def test_one_metrics_listener_shows_both_transports_and_the_guards_outcomes(
    issuer: LoopbackIssuer, spawn: Spawn
) -> None:
    program = await spawn(
        "secureroute", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--issuer", issuer.url, "--audiences", "secureroute", "--metrics-listen", "127.0.0.1:0",
        "--drain-delay-s", "0",
    )  # fmt: skip
    await program.listening("grpc", "http", "metrics", timeout_s=WAIT_S)
    async with _clients(program.ports["grpc"]) as (_channel, stub, http):
        await stub.Health(secureroute_pb2.HealthRequest(), timeout=WAIT_S)
        async with http.get(f"http://127.0.0.1:{program.ports['http']}/secure-route") as response:
            assert response.status == 401
        async with http.get(f"http://127.0.0.1:{program.ports['metrics']}/metrics") as response:
            text = await response.text()
    assert 'secureroute_http_requests_total{code="401",method="GET",route="/secure-route"} 1.0' in text
    assert (
        'secureroute_grpc_requests_total{code="OK",method="/secureroute.v1.SecureRouteService/Health"}'
        in text
    )
    assert 'jwt_authn_authentications_total{outcome="missing_token"} 1.0' in text
    assert await program.stop() == 0
