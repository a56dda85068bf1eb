"""A bounded mixed load against the live stack (service and facade as subprocesses).

100 concurrent gRPC clients and 100 concurrent HTTP clients send 3,000 requests in CI (a
warm-up of 300 first): 60 % valid tokens (RS256, ES256, EdDSA), 25 % invalid ones (bad
signature, expired), 15 % tokens with unknown kids. Asserted: every answer is the expected
one (so zero 5xx), the issuer is fetched at most once per cooldown, RSS grows less than 50 %
after warm-up, and no token reaches the programs' logs.

Longer runs (``make soak``): SECUREROUTE_TEST_LOAD_REQUESTS=60000 SECUREROUTE_TEST_LOAD_CLIENTS=200.
With SECUREROUTE_TEST_RELIABILITY_REPORT=path the figures are written there as JSON.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import grpc
from helpers import secureroute_stub
from load_stack import token_pools, write_report

from dev_stack.children import Child
from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

REQUESTS = int(os.environ.get("SECUREROUTE_TEST_LOAD_REQUESTS", "3000"))
CLIENTS = int(os.environ.get("SECUREROUTE_TEST_LOAD_CLIENTS", "100"))
WARMUP = 300
#: jwt_authn's default cooldown, which the service runs with.
COOLDOWN_S = 30.0
CALL_TIMEOUT_S = 30.0
KIND_WEIGHTS = {"valid": 60, "invalid": 25, "unknown_kid": 15}
EXPECTED = {
    ("grpc", "valid"): {"OK"},
    ("grpc", "invalid"): {"UNAUTHENTICATED:invalid signature", "UNAUTHENTICATED:token expired"},
    ("grpc", "unknown_kid"): {"UNAUTHENTICATED:unknown kid"},
    ("http", "valid"): {"200"},
    ("http", "invalid"): {"401"},
    ("http", "unknown_kid"): {"401"},
}


@dataclass(frozen=True)
class Shot:
    transport: str
    kind: str
    token: str


def plan(pools: dict[str, list[str]], count: int, seed: int) -> list[Shot]:
    rng = random.Random(seed)
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=count)
    return [Shot("grpc" if i % 2 else "http", kind, rng.choice(pools[kind])) for i, kind in enumerate(kinds)]


async def _grpc_once(stub: secureroute_pb2_grpc.SecureRouteServiceStub, token: str) -> str:
    try:
        await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=CALL_TIMEOUT_S,
        )
    except grpc.aio.AioRpcError as err:
        return f"{err.code().name}:{err.details()}"
    return "OK"


async def _http_once(session: aiohttp.ClientSession, url: str, token: str) -> str:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        await response.read()
        return str(response.status)


async def fire(
    shots: list[Shot], *, clients: int, stubs: list[secureroute_pb2_grpc.SecureRouteServiceStub],
    session: aiohttp.ClientSession, facade_url: str,
) -> Counter[tuple[str, str, str]]:  # fmt: skip
    """Send ``shots`` with ``clients`` concurrent workers per transport; count the outcomes."""
    queues = {t: deque(s for s in shots if s.transport == t) for t in ("grpc", "http")}
    tally: Counter[tuple[str, str, str]] = Counter()
    url = f"{facade_url}/secure-route"

    async def worker(transport: str, index: int) -> None:
        queue = queues[transport]
        while queue:
            shot = queue.popleft()
            try:
                if transport == "grpc":
                    outcome = await _grpc_once(stubs[index % len(stubs)], shot.token)
                else:
                    outcome = await _http_once(session, url, shot.token)
            except (aiohttp.ClientError, TimeoutError) as err:
                outcome = f"client-error:{type(err).__name__}"
            tally[(transport, shot.kind, outcome)] += 1

    await asyncio.gather(*(worker(t, i) for t in queues for i in range(clients)))
    return tally


def unexpected(tally: Counter[tuple[str, str, str]]) -> dict[str, int]:
    return {f"{t}/{k}/{o}": n for (t, k, o), n in tally.items() if o not in EXPECTED[(t, k)]}


async def test_mixed_load_on_grpc_and_http(
    load_issuer: LoopbackIssuer, start_processes: Callable[..., Awaitable[tuple[Child, Child]]]
) -> None:
    service, facade = await start_processes(load_issuer.url)
    pools = token_pools(load_issuer)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") for _ in range(4)]
    stubs = [secureroute_stub(c) for c in channels]  # type: ignore[no-untyped-call]
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    facade_url = f"http://127.0.0.1:{facade.port}"
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
        ) as session:
            warm = await fire(plan(pools, WARMUP, seed=1), clients=CLIENTS, stubs=stubs, session=session,
                              facade_url=facade_url)  # fmt: skip
            assert not unexpected(warm), unexpected(warm)
            rss_warm = {"service": service.rss_kib(), "facade": facade.rss_kib()}
            started = time.monotonic()
            tally = await fire(plan(pools, REQUESTS, seed=2), clients=CLIENTS, stubs=stubs, session=session,
                               facade_url=facade_url)  # fmt: skip
            duration = time.monotonic() - started
            rss_end = {"service": service.rss_kib(), "facade": facade.rss_kib()}
    finally:
        for channel in channels:
            await channel.close()

    growth = {name: (rss_end[name] - rss_warm[name]) / rss_warm[name] for name in rss_warm}
    by_status = Counter(outcome.split(":")[0] for (_, _, outcome), n in tally.items() for _ in range(n))
    figures = {
        "requests": sum(tally.values()),
        "warmup_requests": WARMUP,
        "clients_per_transport": CLIENTS,
        "duration_s": round(duration, 1),
        "requests_per_s": round(sum(tally.values()) / duration),
        "outcomes": dict(sorted(by_status.items())),
        "unexpected": unexpected(tally),
        "issuer_discovery_fetches": load_issuer.discovery_fetches,
        "issuer_jwks_fetches": load_issuer.jwks_fetches,
        "rss_kib_after_warmup": rss_warm,
        "rss_kib_at_end": rss_end,
        "rss_growth_pct": {name: round(100 * g, 1) for name, g in growth.items()},
    }
    write_report("mixed_load", figures)

    assert sum(tally.values()) == REQUESTS
    assert not unexpected(tally), unexpected(tally)
    assert not any(outcome.startswith("5") for (_, _, outcome) in tally)
    # Unknown kids cost one refresh per cooldown at most, on top of the first load.
    allowed = 1 + math.ceil((duration + 60) / COOLDOWN_S)
    assert load_issuer.jwks_fetches <= allowed and load_issuer.discovery_fetches <= allowed, figures
    assert all(g < 0.5 for g in growth.values()), figures
    secrets = {token for pool in pools.values() for token in pool}
    secrets |= {token.rsplit(".", 1)[1] for token in secrets}
    logs = "\n".join(service.lines + facade.lines)
    assert not [s[:20] for s in secrets if s in logs], "a token or signature reached the logs"
