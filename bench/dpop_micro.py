"""``python -m bench.dpop_micro``: a micro-measurement of DPoP in the guard, in-process, as ratios.

The second step of ``make bench`` (the first measures the programs on loopback): this times
``Authenticator.authenticate`` itself, side by side in alternating rounds, for the issue 23
targets:

- a DPoP call with a cached token (fresh proof each call) against the same Bearer call, and one
  ES256 signature verification alone: the target is DPoP <= Bearer x 1.2 + one ES256 verify;
- the same over gRPC on loopback (a grpc.aio server and client in this process, sequential unary
  calls): Bearer, DPoP decided in the interceptor (``public_base_urls`` set) and DPoP decided in
  the handler (no public base URL: the proof's scheme comes from the connection);
- the in-memory replay store's memory after 1 million distinct proofs (bounded: flat);
- the Redis replay store's ``remember`` on loopback, p50/p99 (a redis-server started here on a
  free 127.0.0.1 port, when one is installed).

Usage:
    python -m bench.dpop_micro                 # about 20 s
    python -m bench.dpop_micro --calls 2000 --rounds 3 --proofs 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import grpc
from jwcrypto.jwa import JWA

from dev_stack.redis_server import RedisServer
from jwt_authn import (
    AsyncAuthInterceptor,
    Authenticator,
    AuthnConfig,
    DPoPConfig,
    IssuerConfig,
    MemoryReplayStore,
    Policy,
    ProofTarget,
    SenderContext,
    recommended_server_options,
)
from jwt_authn.replay_redis import RedisReplayStore
from jwt_authn.testing import TokenFactory, generate_key, make_dpop_proof

ISSUER = "https://issuer.example"
METHOD = "/bench.v1.Echo/Unary"
HTU = "https://api.example.com" + METHOD


async def _authenticator(now: float) -> tuple[Authenticator, TokenFactory]:
    tokens = TokenFactory(ISSUER, ("ES256",), "bench")
    jwks = {"keys": [key.export_public(as_dict=True) for key in tokens.keys.values()]}
    config = AuthnConfig(
        issuers=(IssuerConfig(issuer=ISSUER, audiences=("bench",), jwks=jwks),),
        policy=Policy(),
        clock=lambda: now,
        dpop=DPoPConfig(public_base_urls=("https://api.example.com",), replay_store_size=1_000_000),
    )
    authenticator = Authenticator(config)
    await authenticator.start()
    assert await authenticator.wait_ready(10)
    return authenticator, tokens


def _per_call_us(elapsed_ns: int, calls: int) -> float:
    return elapsed_ns / calls / 1000


async def measure_calls(calls: int, rounds: int) -> dict[str, float]:
    now = time.time()
    authenticator, tokens = await _authenticator(now)
    key = generate_key("ES256")
    bearer = [f"Bearer {tokens.issue(now=now, ttl_s=3600)}"]
    dpop_token = tokens.issue(now=now, ttl_s=3600, claims={"cnf": {"jkt": key.thumbprint()}})
    dpop = [f"DPoP {dpop_token}"]
    target = ProofTarget("POST", uris=(HTU,))
    # Warm both caches (token cache, proof header cache).
    await authenticator.authenticate(bearer, METHOD)
    warm = make_dpop_proof(key, htm="POST", htu=HTU, iat=now, token=dpop_token)
    await authenticator.authenticate(dpop, METHOD, sender=SenderContext(proofs=(warm,), target=target))
    engine = JWA.signing_alg("ES256")
    signing_input, signature = b"x" * 300, engine.sign(key, b"x" * 300)
    results: dict[str, list[float]] = {"bearer": [], "dpop": [], "es256_verify": []}
    for _ in range(rounds):
        senders = [
            SenderContext(
                proofs=(make_dpop_proof(key, htm="POST", htu=HTU, iat=now, token=dpop_token),), target=target
            )
            for _ in range(calls)
        ]
        start = time.perf_counter_ns()
        for _ in range(calls):
            await authenticator.authenticate(bearer, METHOD)
        results["bearer"].append(_per_call_us(time.perf_counter_ns() - start, calls))
        start = time.perf_counter_ns()
        for sender in senders:
            await authenticator.authenticate(dpop, METHOD, sender=sender)
        results["dpop"].append(_per_call_us(time.perf_counter_ns() - start, calls))
        start = time.perf_counter_ns()
        for _ in range(calls):
            engine.verify(key, signing_input, signature)
        results["es256_verify"].append(_per_call_us(time.perf_counter_ns() - start, calls))
    await authenticator.close()
    return {name: statistics.median(values) for name, values in results.items()}


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _grpc_per_call_us(
    channel: grpc.aio.Channel, metadata: Sequence[tuple[tuple[str, str], ...]]
) -> float:
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    start = time.perf_counter_ns()
    for entries in metadata:
        await call(b"x", metadata=entries)
    return _per_call_us(time.perf_counter_ns() - start, len(metadata))


async def measure_grpc(calls: int, rounds: int) -> dict[str, float]:
    now = time.time()
    tokens = TokenFactory(ISSUER, ("ES256",), "bench")
    jwks = {"keys": [key.export_public(as_dict=True) for key in tokens.keys.values()]}
    key = generate_key("ES256")
    bearer_token = tokens.issue(now=now, ttl_s=3600)
    dpop_token = tokens.issue(now=now, ttl_s=3600, claims={"cnf": {"jkt": key.thumbprint()}})
    results: dict[str, list[float]] = {"bearer": [], "dpop_in_interceptor": [], "dpop_in_handler": []}
    servers: dict[str, tuple[grpc.aio.Server, Authenticator, grpc.aio.Channel, str]] = {}
    for variant, bases in (("dpop_in_interceptor", ("https://api.example.com",)), ("dpop_in_handler", ())):
        config = AuthnConfig(
            issuers=(IssuerConfig(issuer=ISSUER, audiences=("bench",), jwks=jwks),),
            policy=Policy(),
            dpop=DPoPConfig(public_base_urls=bases, replay_store_size=1_000_000),
        )
        authenticator = Authenticator(config)
        server = grpc.aio.server(
            interceptors=[AsyncAuthInterceptor(authenticator)], options=recommended_server_options(config)
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "bench.v1.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(_echo)}
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await authenticator.start()
        await authenticator.wait_ready(10)
        htu = (bases[0] if bases else f"http://127.0.0.1:{port}") + METHOD
        servers[variant] = (server, authenticator, grpc.aio.insecure_channel(f"127.0.0.1:{port}"), htu)
    bearer_metadata = [(("authorization", f"Bearer {bearer_token}"),)] * calls
    for _ in range(rounds):
        for variant, (_, _, channel, htu) in servers.items():
            dpop_metadata = [
                (
                    ("authorization", f"DPoP {dpop_token}"),
                    ("dpop", make_dpop_proof(key, htm="POST", htu=htu, iat=time.time(), token=dpop_token)),
                )
                for _ in range(calls)
            ]
            if variant == "dpop_in_interceptor":
                results["bearer"].append(await _grpc_per_call_us(channel, bearer_metadata))
            results[variant].append(await _grpc_per_call_us(channel, dpop_metadata))
    for server, authenticator, channel, _ in servers.values():
        await channel.close(None)
        await server.stop(0)
        await authenticator.close()
    return {name: statistics.median(values) for name, values in results.items()}


async def measure_memory(proofs: int) -> tuple[int, int, int]:
    """Traced bytes of a default-sized store after ``proofs // 10`` and after ``proofs`` distinct proofs."""
    store = MemoryReplayStore(max_entries=100_000, max_entries_per_key=10_000)
    tracemalloc.start()
    early = 0
    for index in range(proofs):
        now = index * 0.001  # 1,000 proofs a second: the window (60 s) holds 60,000
        await store.remember(index.to_bytes(8, "big") * 4, f"key{index % 1000}", now + 60, now)
        if index == proofs // 10:
            early = tracemalloc.get_traced_memory()[0]
    late = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return early, late, len(store)


async def measure_redis(calls: int) -> tuple[float, float] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    async with RedisServer(binary) as redis:
        store = RedisReplayStore.from_url(redis.url)
        timings: list[float] = []
        now = time.time()
        for index in range(calls):
            start = time.perf_counter_ns()
            await store.remember(index.to_bytes(32, "big"), "key", now + 60, now)
            timings.append((time.perf_counter_ns() - start) / 1000)
        await store.close()
    timings.sort()
    return timings[len(timings) // 2], timings[int(len(timings) * 0.99)]


async def main(calls: int, rounds: int, proofs: int) -> None:
    times = await measure_calls(calls, rounds)
    bearer, dpop, verify = times["bearer"], times["dpop"], times["es256_verify"]
    print(f"Bearer call, cached token:            {bearer:8.1f} µs")
    print(f"DPoP call, cached token, fresh proof: {dpop:8.1f} µs")
    print(f"one ES256 verification (jwcrypto):    {verify:8.1f} µs")
    budget = bearer * 1.2 + verify
    print(
        f"target DPoP <= Bearer x 1.2 + ES256:  {budget:8.1f} µs -> {'met' if dpop <= budget else 'NOT met'}"
    )
    print(
        f"DPoP extra over Bearer: {dpop - bearer:.1f} µs = {(dpop - bearer) / verify:.2f} ES256 verifications"
    )
    over_grpc = await measure_grpc(calls // 2, rounds)
    grpc_bearer = over_grpc["bearer"]
    print(f"gRPC loopback, Bearer call:                    {grpc_bearer:8.1f} µs")
    for variant in ("dpop_in_interceptor", "dpop_in_handler"):
        dpop_call = over_grpc[variant]
        ok = "met" if dpop_call <= grpc_bearer * 1.2 + verify else "NOT met"
        print(
            f"gRPC loopback, DPoP call ({variant.replace('_', ' ')}): {dpop_call:8.1f} µs"
            f" (target {grpc_bearer * 1.2 + verify:.1f} µs: {ok})"
        )
    early, late, size = await measure_memory(proofs)
    print(
        f"memory store after {proofs // 10:,} / {proofs:,} distinct proofs: "
        f"{early / 1e6:.1f} MB / {late / 1e6:.1f} MB traced, {size:,} live entries"
    )
    redis = await measure_redis(calls)
    if redis is None:
        print("Redis store: no redis-server installed, not measured")
    else:
        print(f"Redis store remember() on loopback: p50 {redis[0]:.0f} µs, p99 {redis[1]:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--proofs", type=int, default=1_000_000)
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.rounds, options.proofs))
