"""The service and the facade as real subprocesses (``python -m service``, ``python -m
http_facade``) started by ``dev_stack.children.Child``: their logs kept, their RSS readable and
SIGTERM at hand; and the tokens, reports and recorded calls the load tests share.

Usage:
    service = await start_service_process(issuer.url, tmp_path, grace_s=3, drain_delay_s=1)
    facade = await start_facade_process(service.port, tmp_path)
    service.rss_kib(); service.send_signal(signal.SIGTERM); await service.wait(10)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dev_stack.children import NO_METRICS_ENV, Child, child_env
from dev_stack.readiness import service_ready, wait_ready
from jwt_authn.testing import LoopbackIssuer, generate_key
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = [
    "LOAD_ALGORITHMS",
    "SECURE_ROUTE_SERVICE",
    "HealthWatch",
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
START_TIMEOUT_S = 30.0


async def _start(name: str, argv: list[str], logs: Path) -> Child:
    # Only flags configure the programs under test, and no metrics ports (stacks of the same run
    # would all want the default one).
    child = Child.start(
        name, [sys.executable, *argv], log=logs / f"{name}.log", env=child_env(**NO_METRICS_ENV)
    )
    try:
        return await child.listening(timeout_s=START_TIMEOUT_S)
    except BaseException:
        await child.stop()
        raise


async def start_service_process(
    issuer_url: str, logs: Path, *extra: str, grace_s: float = 5.0, drain_delay_s: float = 0.0
) -> Child:
    """The service; no drain delay unless asked (only the drain test needs the default's 1 s)."""
    argv = ["-m", "service", "--listen", "127.0.0.1:0", "--issuer", issuer_url, "--audiences", "secureroute"]
    argv += ["--grace-period-s", str(grace_s), "--drain-delay-s", str(drain_delay_s), "--log-level", "INFO"]
    argv += extra
    return await _start("service", argv, logs)


async def start_facade_process(backend_port: int, logs: Path, *, backend_timeout_s: float = 5.0) -> Child:
    argv = ["-m", "http_facade", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{backend_port}"]
    argv += ["--backend-timeout-s", str(backend_timeout_s), "--log-level", "INFO"]
    return await _start("facade", argv, logs)


async def wait_serving(service: Child, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until the service reports SecureRouteService SERVING (its key set loaded)."""
    await wait_ready("service", service_ready(f"127.0.0.1:{service.port}"), [service], deadline_s=timeout_s)


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
