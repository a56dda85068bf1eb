"""The service and the facade as real subprocesses (``python -m service``, ``python -m
http_facade``), with their stderr collected, their RSS readable and SIGTERM at hand.

Usage:
    service = await start_service_process(issuer.url, grace_s=3, drain_delay_s=1)
    facade = await start_facade_process(service.port)
    service.rss_kib(); service.terminate(); await service.wait(10)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jwt_authn.testing import LoopbackIssuer, generate_key
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = [
    "LOAD_ALGORITHMS",
    "SECURE_ROUTE_SERVICE",
    "HealthWatch",
    "Program",
    "Record",
    "grpc_call",
    "http_call",
    "start_facade_process",
    "start_service_process",
    "token_pools",
    "wait_serving",
    "write_report",
]

SECURE_ROUTE_SERVICE = "secureroute.v1.SecureRouteService"
#: One of each key type: the load mixes RSA, EC and EdDSA verification.
LOAD_ALGORITHMS = ("ES256", "EdDSA", "RS256")

#: Metrics ports off in the children (see ``_environment``).
NO_METRICS_ENV = {"SECUREROUTE_METRICS_LISTEN": "off", "SECUREROUTE_HTTP_METRICS_LISTEN": "off"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT_S = 30.0
_SERVICE_READY = re.compile(r"listening on \S+:(\d+) \(grpc\)")
_FACADE_READY = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@dataclass
class Program:
    """A running subprocess whose stderr is read line by line into ``lines``."""

    name: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    port: int = 0
    _reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """Resident set size from /proc/PID/status (VmRSS, in KiB)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout_s: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout_s)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    async def wait_for_line(
        self, pattern: re.Pattern[str], timeout_s: float = START_TIMEOUT_S
    ) -> re.Match[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            for line in self.lines:
                if found := pattern.search(line):
                    return found
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not log {pattern.pattern!r}:\n" + "\n".join(self.lines[-20:]))

    async def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it lingers; always reap and stop reading."""
        if self.process.returncode is None:
            self.terminate()
            try:
                await self.wait(15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader


def _environment() -> dict[str, str]:
    # Only flags configure the programs under test: no SECUREROUTE_* from the caller's shell,
    # and no metrics ports (stacks of the same run would all want the default one).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREROUTE_")}
    return env | NO_METRICS_ENV


async def _start(name: str, argv: list[str], ready: re.Pattern[str]) -> Program:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=ROOT,
        env=_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    program = Program(name, process)
    program._reader = asyncio.get_running_loop().create_task(program._read())
    try:
        program.port = int((await program.wait_for_line(ready)).group(1))
    except BaseException:
        await program.stop()
        raise
    return program


async def start_service_process(
    issuer_url: str, *extra: str, grace_s: float = 5.0, drain_delay_s: float = 0.0
) -> Program:
    """The service; no drain delay unless asked (only the drain test needs the default's 1 s)."""
    argv = ["-m", "service", "--listen", "127.0.0.1:0", "--issuer", issuer_url, "--audience", "secureroute"]
    argv += ["--grace-period-s", str(grace_s), "--drain-delay-s", str(drain_delay_s), "--log-level", "INFO"]
    argv += extra
    return await _start("service", argv, _SERVICE_READY)


async def start_facade_process(backend_port: int, *, backend_timeout_s: float = 5.0) -> Program:
    argv = ["-m", "http_facade", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backend_port}"]
    argv += ["--backend-timeout-s", str(backend_timeout_s), "--log-level", "INFO"]
    return await _start("facade", argv, _FACADE_READY)


async def wait_serving(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until the service reports SecureRouteService SERVING (its key set loaded)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SECURE_ROUTE_SERVICE)
        async for reply in stub.Watch(request, timeout=timeout_s):
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return


# Tokens and reports ------------------------------------------------------------------------


def _flip_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def token_pools(issuer: LoopbackIssuer) -> dict[str, list[str]]:
    valid = [
        issuer.tokens.issue(alg=alg, sub=f"user-{i}", ttl_s=3600, scope="read")
        for alg in LOAD_ALGORITHMS
        for i in range(10)
    ]
    invalid = [_flip_signature(token) for token in valid[::3]] + [
        issuer.tokens.issue(alg=alg, ttl_s=-3600) for alg in LOAD_ALGORITHMS for _ in range(3)
    ]
    strangers = [generate_key("ES256") for _ in range(3)]
    unknown = [
        issuer.tokens.issue(key=strangers[i % 3], headers={"kid": f"unknown-{uuid.uuid4().hex}"})
        for i in range(30)
    ]
    return {"valid": valid, "invalid": invalid, "unknown_kid": unknown}


def write_report(name: str, figures: dict[str, object]) -> None:
    path = os.environ.get("SECUREROUTE_TEST_RELIABILITY_REPORT")
    print(f"\n{name}: {json.dumps(figures, sort_keys=True)}")  # shown with -s
    if path:
        report = {}
        if os.path.exists(path):
            with open(path) as existing:
                report = json.load(existing)
        report[name] = figures
        with open(path, "w") as out:
            json.dump(report, out, indent=2, sort_keys=True)


# Calls that record when and how they ended ------------------------------------------------


@dataclass(frozen=True)
class Record:
    started: float
    ended: float
    outcome: str
    retry_after: str | None = None


class HealthWatch:
    """Every status a Watch stream reports, with when it arrived."""

    def __init__(self, port: int) -> None:
        self.seen: list[tuple[float, str]] = []
        self._first = asyncio.Event()
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            async for reply in stub.Watch(health_pb2.HealthCheckRequest(service=SECURE_ROUTE_SERVICE)):
                self.seen.append(
                    (time.monotonic(), health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                )
                self._first.set()
        except grpc.aio.AioRpcError:
            pass  # the stream ends when the server goes away

    async def first(self, timeout_s: float = 10.0) -> str:
        await asyncio.wait_for(self._first.wait(), timeout_s)
        return self.seen[0][1]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._channel.close()


async def grpc_call(stub: secureroute_pb2_grpc.SecureRouteServiceStub, token: str) -> Record:
    started = time.monotonic()
    try:
        await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=15
        )
        outcome = "OK"
    except grpc.aio.AioRpcError as err:
        outcome = err.code().name
    return Record(started, time.monotonic(), outcome)


async def http_call(session: aiohttp.ClientSession, url: str, token: str) -> Record:
    started = time.monotonic()
    try:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            return Record(
                started, time.monotonic(), str(response.status), response.headers.get("Retry-After")
            )
    except (aiohttp.ClientError, TimeoutError) as err:
        return Record(started, time.monotonic(), f"client-error:{type(err).__name__}")
