"""``--workers N``: N processes on one port (SO_REUSEPORT), a crashed worker restarted, SIGTERM stops all.

The programs run as real processes; their JSON log lines say which worker started with which pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any

import aiohttp
import grpc
from helpers import secureroute_stub
from prometheus_client.parser import text_string_to_metric_families

from jwt_authn.testing import LoopbackIssuer
from runtime.workers import WorkerPlan, supervise
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer

WAIT_S = 20.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
    return False


async def _wait_gone(pids: list[int]) -> None:
    async with asyncio.timeout(WAIT_S):
        while any(_alive(pid) for pid in pids):  # noqa: ASYNC110 - another process's death: no event to await
            await asyncio.sleep(0.05)


async def _secure_route(port: int, token: str) -> str:
    """One call on a new connection (each connection lands on one worker)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = secureroute_stub(channel)
        reply = await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(),
            metadata=[("authorization", f"Bearer {token}")],
            timeout=WAIT_S,
        )
        return str(reply.message)


async def _until_served(port: int, token: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                if await _secure_route(port, token) == "Super secret stuff":
                    return
            except grpc.aio.AioRpcError:
                pass  # a worker still loading its keys answers UNAVAILABLE
            await asyncio.sleep(0.1)


def _worker_pids(program: Any) -> dict[int, int]:
    """index -> pid of the latest start of each worker."""
    pids: dict[int, int] = {}
    for line in program.records:
        message = str(line.get("message", ""))
        if message.startswith("worker ") and " started (pid " in message:
            index, pid = message.removeprefix("worker ").split(" started (pid ")
            pids[int(index)] = int(pid.rstrip(")"))
    return pids


async def test_service_workers_restart_and_stop(issuer: LoopbackIssuer, spawn: Any) -> None:
    supervisor = await spawn(
        "service", "--listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
        "--workers", "2", "--grace-period-s", "1",
    )  # fmt: skip
    port = (await supervisor.listening()).port
    await supervisor.wait_for(r"worker \d started", count=2)
    await supervisor.wait_for(r"key set loaded for", count=2)  # each worker has its own key-set cache
    token = issuer.tokens.issue()
    await _until_served(port, token)
    replies = await asyncio.gather(*(_secure_route(port, token) for _ in range(8)))
    assert set(replies) == {"Super secret stuff"}

    first = _worker_pids(supervisor)
    assert len(first) == 2 and supervisor.process.pid not in first.values()
    os.kill(first[0], signal.SIGKILL)
    await supervisor.wait_for(r"worker 0 \(pid \d+\) exited with -9; restarting", timeout_s=WAIT_S)
    await supervisor.wait_for(r"worker \d started", count=3)
    await supervisor.wait_for(r"key set loaded for", count=3)  # the new worker is ready too
    second = _worker_pids(supervisor)
    assert second[0] != first[0] and second[1] == first[1]
    for _ in range(8):  # new connections, spread over both workers by the kernel
        assert await _secure_route(port, token) == "Super secret stuff"

    assert await supervisor.stop(signal.SIGTERM) == 0, "\n".join(supervisor.lines)
    await _wait_gone(list(second.values()))
    assert sum(line.get("message") == "stopped" for line in supervisor.records) == 3  # 2 workers + supervisor
    assert not any("Traceback" in raw for raw in supervisor.lines)


async def test_workers_die_with_a_killed_supervisor(issuer: LoopbackIssuer, spawn: Any) -> None:
    supervisor = await spawn(
        "service", "--listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
        "--workers", "2",
    )  # fmt: skip
    await supervisor.wait_for(r"worker \d started", count=2)
    pids = list(_worker_pids(supervisor).values())
    await supervisor.stop(signal.SIGKILL)
    await _wait_gone(pids)


async def test_facade_workers_share_the_port_and_the_metrics(
    service: SecureRouteServer, spawn: Any, http: aiohttp.ClientSession
) -> None:
    metrics_port = _free_port_pair()
    supervisor = await spawn(
        "http_facade", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{service.port}", "--workers", "2",
        "--metrics-listen", f"127.0.0.1:{metrics_port}", "--access-log",
    )  # fmt: skip
    port = (await supervisor.listening()).port
    await supervisor.wait_for(r"listening on", count=3)  # the supervisor, then each worker
    await supervisor.wait_for(r"metrics on http://", count=2)
    workers = _worker_pids(supervisor)
    served_by: set[int] = set()
    # New connection per request, so the kernel spreads them over the workers.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(20):
            async with fresh.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 200
        totals = []
        for index in range(6):  # whichever worker's metrics port answers, the sum is the same
            async with fresh.get(f"http://127.0.0.1:{metrics_port + index % 2}/metrics") as response:
                text = await response.text()
            totals.append(
                sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "secureroute_http_requests_total"
                    and sample.labels.get("route") == "/health"
                )
            )
    assert totals == [20.0] * 6
    served_by = {int(line["pid"]) for line in supervisor.records if "GET /health" in str(line.get("message"))}
    assert served_by <= set(workers.values()) and served_by  # the workers answered, not the supervisor

    os.kill(workers[1], signal.SIGKILL)
    await supervisor.wait_for(r"worker 1 \(pid \d+\) exited with -9; restarting")
    await supervisor.wait_for(r"listening on", count=4)
    async with http.get(f"http://127.0.0.1:{port}/health") as response:
        assert response.status == 200
    assert await supervisor.stop(signal.SIGTERM) == 0
    await _wait_gone(list(_worker_pids(supervisor).values()))


def test_a_crash_loop_makes_the_supervisor_give_up(caplog: Any) -> None:
    plan = WorkerPlan(
        prog="crasher",
        count=2,
        argv_for=lambda index: [sys.executable, "-c", "raise SystemExit(3)"],
        grace_s=1.0,
        max_restarts=3,
        restart_window_s=60.0,
    )
    started = time.monotonic()
    assert supervise(plan) == 1
    assert time.monotonic() - started < WAIT_S
    assert sum("restarting it" in r.getMessage() for r in caplog.records) == 3
    assert any("giving up" in r.getMessage() for r in caplog.records)


def _free_port_pair() -> int:
    """A port p with p and p+1 both free right now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two adjacent free ports")


async def test_each_service_worker_serves_metrics_on_its_own_port(
    issuer: LoopbackIssuer, spawn: Any, http: aiohttp.ClientSession
) -> None:
    metrics_port = _free_port_pair()
    supervisor = await spawn(
        "service", "--listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
        "--workers", "2", "--metrics-listen", f"127.0.0.1:{metrics_port}",
    )  # fmt: skip
    await supervisor.wait_for(r"metrics on http://", count=2)
    await supervisor.wait_for(r"key set loaded for", count=2)
    for port in (metrics_port, metrics_port + 1):
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        keys = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "jwt_authn_jwks_keys"
        ]
        assert keys == [1.0]  # each worker has its own, loaded, key set
    announced = {
        str(line["message"]).rsplit(":", 1)[1].split("/")[0]: line["pid"]
        for line in supervisor.records
        if str(line.get("message", "")).startswith("metrics on http://")
    }
    assert set(announced) == {str(metrics_port), str(metrics_port + 1)}
    assert len(set(announced.values())) == 2  # one port per worker process
    assert await supervisor.stop(signal.SIGTERM) == 0
