"""SIGTERM with a call in flight: it completes, the process exits 0 within its grace period,
its port is closed; the same for the facade. (The same under load: test_load_drain.py.)

The in-flight calls here are slow on purpose: a cold service whose issuer takes 1.5 s to
serve its JWKS makes the first calls wait inside the service, so SIGTERM surely lands while
they are being handled.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import aiohttp
import grpc
import pytest
from helpers import port_refused, secureroute_stub
from load_stack import HealthWatch, grpc_call, http_call

from dev_stack.children import Child
from jwt_authn.testing import Fault, LoopbackIssuer

StartProcesses = Callable[..., Awaitable[tuple[Child, Child]]]
GRACE_S = 3.0


@pytest.fixture
def slow_jwks(load_issuer: LoopbackIssuer) -> LoopbackIssuer:
    """The issuer takes 1.5 s to serve its JWKS: a cold service's first calls wait that long
    (the services of these tests wait up to ``WAITING_FOR_SLOW_KEYS`` for a key refresh, as an
    operator would set for an issuer this slow; the default 1 s would answer them 503)."""
    load_issuer.fault = Fault(delay_s=1.5, only="jwks")
    return load_issuer


WAITING_FOR_SLOW_KEYS = ("--refresh-wait-s", "5")


async def test_sigterm_lets_in_flight_calls_complete(
    slow_jwks: LoopbackIssuer, start_processes: StartProcesses
) -> None:
    service, facade = await start_processes(
        slow_jwks.url, *WAITING_FOR_SLOW_KEYS, grace_s=3.0, backend_timeout_s=10.0, wait_ready=False
    )
    token = slow_jwks.tokens.issue()
    watch = HealthWatch(service.port)
    assert await watch.first() == "NOT_SERVING"
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
    ):
        stub = secureroute_stub(channel)
        url = f"http://127.0.0.1:{facade.port}/secure-route"
        in_flight = asyncio.gather(grpc_call(stub, token), http_call(session, url, token))
        await asyncio.sleep(0.3)  # both now wait for the key set inside the service
        sigterm_at = time.monotonic()
        service.send_signal(signal.SIGTERM)
        grpc_record, http_record = await in_flight
        returncode = await service.wait(15)
        exited_at = time.monotonic()
        after_exit = await http_call(session, url, token)
    await watch.close()

    assert grpc_record.outcome == "OK" and grpc_record.ended > sigterm_at
    assert http_record.outcome == "200" and http_record.ended > sigterm_at
    assert returncode == 0 and exited_at - sigterm_at <= 3.0 + 2
    assert await port_refused(service.port)
    # The key set arrived during the drain: health must not flip back to SERVING.
    assert [status for _, status in watch.seen] == ["NOT_SERVING"]
    # With the service gone the facade answers 503 and says when to retry.
    assert after_exit.outcome == "503" and after_exit.retry_after


async def test_facade_sigterm_lets_in_flight_requests_complete(
    slow_jwks: LoopbackIssuer, start_processes: StartProcesses
) -> None:
    _service, facade = await start_processes(
        slow_jwks.url, *WAITING_FOR_SLOW_KEYS, backend_timeout_s=10.0, wait_ready=False
    )
    tokens = [slow_jwks.tokens.issue(sub=f"user-{i}") for i in range(20)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        url = f"http://127.0.0.1:{facade.port}/secure-route"
        in_flight = asyncio.gather(*(http_call(session, url, token) for token in tokens))
        await asyncio.sleep(0.3)
        sigterm_at = time.monotonic()
        facade.send_signal(signal.SIGTERM)
        records = await in_flight
        returncode = await facade.wait(15)
        exited_at = time.monotonic()
    assert {r.outcome for r in records} == {"200"}
    assert returncode == 0 and exited_at - sigterm_at <= 5.0 + 2  # the facade's shutdown timeout is 5 s
    assert await port_refused(facade.port)
