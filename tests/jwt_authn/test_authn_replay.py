"""The DPoP replay stores: the in-memory default (bounded in total and per key, never forgetting a
live proof) and the Redis store shared by replicas, against a real ``redis-server`` (Debian's,
apt-installed when missing and allowed) on 127.0.0.1. Fail closed when Redis is gone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from dpop_servers import METHOD, start

from dev_stack.redis_server import RedisServer
from jwt_authn import (
    Authenticator,
    AuthnConfig,
    DPoPConfig,
    IssuerConfig,
    MemoryReplayStore,
    PermissionDenied,
    Policy,
    ProofTarget,
    Requirement,
    SenderContext,
    Unauthenticated,
)
from jwt_authn.replay_redis import RedisReplayStore
from jwt_authn.status_map import challenges
from jwt_authn.testing import LoopbackIssuer, generate_key, make_dpop_proof

HTU = "https://api.example.com/test.v1.Echo/Unary"
WAIT_S = 10.0


# --- the in-memory store --------------------------------------------------------------------------


async def _reason(store: MemoryReplayStore, key: bytes, jkt: str, expires_at: float, now: float) -> str:
    try:
        await store.remember(key, jkt, expires_at, now)
    except Unauthenticated as error:
        return error.reason
    return "ok"


async def test_memory_store_refuses_a_replay_until_the_proof_expires() -> None:
    store = MemoryReplayStore(max_entries=10, max_entries_per_key=10)
    assert await _reason(store, b"a", "k", expires_at=100, now=50) == "ok"
    assert await _reason(store, b"a", "k", expires_at=100, now=99) == "dpop_proof_replayed"
    # Expired entries leave (the proof itself would fail its iat check by then).
    assert await _reason(store, b"b", "k", expires_at=300, now=101) == "ok"
    assert len(store) == 1


async def test_memory_store_full_in_total_raises_its_floor_instead_of_forgetting() -> None:
    store = MemoryReplayStore(max_entries=3, max_entries_per_key=3)
    for index, key in enumerate((b"a", b"b", b"c")):
        assert await _reason(store, key, f"k{index}", expires_at=100 + index, now=0) == "ok"
    assert await _reason(store, b"d", "k3", expires_at=110, now=0) == "ok"  # "a" (expiring at 100) leaves
    assert (len(store), store.floor) == (3, 100)
    # "a" was forgotten: a proof that old is refused, so its replay is too.
    assert await _reason(store, b"a", "k0", expires_at=100, now=0) == "dpop_replay_store_full"
    # Younger proofs still pass.
    assert await _reason(store, b"e", "k4", expires_at=120, now=0) == "ok"


async def test_memory_store_full_for_one_key_raises_that_keys_floor() -> None:
    store = MemoryReplayStore(max_entries=100, max_entries_per_key=2)
    assert await _reason(store, b"a", "k", expires_at=100, now=0) == "ok"
    assert await _reason(store, b"b", "k", expires_at=101, now=0) == "ok"
    assert await _reason(store, b"c", "k", expires_at=102, now=0) == "ok"  # "a" leaves: k's floor 100
    assert len(store) == 2
    assert await _reason(store, b"a", "k", expires_at=100, now=0) == "dpop_replay_store_full"
    assert await _reason(store, b"b", "k", expires_at=101, now=0) == "dpop_proof_replayed"
    # Another key is not affected by k's floor, nor is the store's.
    assert await _reason(store, b"x", "another key", expires_at=100, now=0) == "ok"
    assert store.floor == -math.inf
    # Fresh proofs of k still pass.
    assert await _reason(store, b"d", "k", expires_at=160, now=0) == "ok"


@pytest.mark.parametrize("keys", [1, 50])
async def test_memory_store_stays_bounded_over_many_distinct_proofs(keys: int) -> None:
    """20,000 fresh proofs in 20 s, far more than the store holds: every one passes (each is
    fresh), none is remembered beyond the bounds, the bookkeeping stays bounded too."""
    store = MemoryReplayStore(max_entries=1000, max_entries_per_key=100)
    for index in range(20_000):
        now = index * 0.001
        assert await _reason(store, index.to_bytes(4, "big"), f"k{index % keys}", now + 60, now) == "ok"
        assert len(store) <= 1000
        assert len(store._order) <= 2 * 1000 + 64
        assert all(len(order) <= 2 * 100 + 64 for order in store._per_key.values())
    assert len(store._per_key) <= keys
    # And a replay of the last one is still caught.
    assert (
        await _reason(store, (19_999).to_bytes(4, "big"), f"k{19_999 % keys}", 80, 20)
        == "dpop_proof_replayed"
    )


# --- through the Authenticator: observer reasons ------------------------------------------------


class CountingObserver:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def on_outcome(self, reason: str) -> None:
        self.reasons.append(reason)


def _sender(proof: str) -> SenderContext:
    return SenderContext(proofs=(proof,), target=ProofTarget("POST", uris=(HTU,)))


async def _outcome(authenticator: Authenticator, token: str, proof: str) -> str:
    try:
        await authenticator.authenticate([f"DPoP {token}"], METHOD, sender=_sender(proof))
    except Unauthenticated as error:
        return error.reason
    return "ok"


async def test_observers_are_told_the_reason_never_a_value(
    make_authenticator: Any, issuer: LoopbackIssuer, issuer_config: Any, clock: Any
) -> None:
    observer = CountingObserver()
    authenticator = await make_authenticator(issuer_config(issuer), observer=observer)
    key = generate_key("ES256")
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})
    proof = make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)
    assert await _outcome(authenticator, token, proof) == "ok"
    assert await _outcome(authenticator, token, proof) == "dpop_proof_replayed"
    other = generate_key("ES256")
    stranger = make_dpop_proof(other, htm="POST", htu=HTU, iat=clock.now, token=token)
    assert await _outcome(authenticator, token, stranger) == "dpop_key_mismatch"
    assert observer.reasons == ["ok", "dpop_proof_replayed", "dpop_key_mismatch"]


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
async def redis_store() -> AsyncIterator[Callable[[str], RedisReplayStore]]:
    stores: list[RedisReplayStore] = []

    def make(url: str) -> RedisReplayStore:
        store = RedisReplayStore.from_url(url, timeout_s=0.5)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


async def test_a_proof_accepted_by_one_replica_is_refused_by_another(
    *,
    redis: RedisServer,
    redis_store: Callable[[str], RedisReplayStore],
    issuer: LoopbackIssuer,
    issuer_config: Callable[..., IssuerConfig],
    clock: Any,
) -> None:
    await redis.start()
    dpop = DPoPConfig(public_base_urls=("https://api.example.com",))
    config = AuthnConfig(issuers=(issuer_config(issuer),), policy=Policy(), clock=clock, dpop=dpop)
    # Two replicas of different kinds, one Redis: the aiohttp middleware and a grpc.aio server.
    http = await start("http", config, replay_store=redis_store(redis.url))
    aio = await start("aio", config, replay_store=redis_store(redis.url))
    try:
        key = generate_key("ES256")
        token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})
        proof = make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)
        assert (await aio.call(f"DPoP {token}", [proof])).outcome == "ok"
        again = await aio.call(f"DPoP {token}", [proof])
        assert (again.outcome, again.reason) == ("unauthenticated", "dpop_proof_replayed")
        # The HTTP replica checks htm GET on /orders: a proof for it, accepted once, across replicas.
        http_proof = make_dpop_proof(
            key, htm="GET", htu="https://api.example.com/orders", iat=clock.now, token=token
        )
        assert (await http.call(f"DPoP {token}", [http_proof])).outcome == "ok"
        second = await start("http", config, replay_store=redis_store(redis.url))
        try:
            replayed = await second.call(f"DPoP {token}", [http_proof])
            assert (replayed.outcome, replayed.reason) == ("unauthenticated", "dpop_proof_replayed")
        finally:
            await second.close()
        # A threaded replica (its store lives on the SyncAuthenticator's loop, which closes it).
        threaded = await start("sync", config, replay_store=RedisReplayStore.from_url(redis.url))
        try:
            fresh = make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)
            assert (await threaded.call(f"DPoP {token}", [fresh])).outcome == "ok"
            for replica in (aio, threaded):
                replayed = await replica.call(f"DPoP {token}", [fresh])
                assert (replayed.outcome, replayed.reason) == ("unauthenticated", "dpop_proof_replayed")
            replayed = await threaded.call(f"DPoP {token}", [proof])  # accepted by the aio replica
            assert (replayed.outcome, replayed.reason) == ("unauthenticated", "dpop_proof_replayed")
        finally:
            await threaded.close()
    finally:
        await http.close()
        await aio.close()


async def test_redis_keys_expire_with_the_proof_window(
    redis: RedisServer, redis_store: Callable[[str], RedisReplayStore]
) -> None:
    await redis.start()
    store = redis_store(redis.url)
    await store.remember(b"\x01" * 32, "k", expires_at=1000.0, now=940.0)
    client = store._client
    ttl_ms = await client.pttl(b"jwt-authn:dpop:" + (b"\x01" * 32).hex().encode())
    assert 0 < ttl_ms <= 60_000
    assert len(await client.keys("*")) == 1  # the digest only: no token, proof or jti in clear


async def test_redis_unreachable_fails_closed_and_says_so(
    *,
    redis: RedisServer,
    redis_store: Callable[[str], RedisReplayStore],
    make_authenticator: Any,
    issuer: LoopbackIssuer,
    issuer_config: Any,
    clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on the port yet.
    store = redis_store(redis.url)
    observer = CountingObserver()
    authenticator = await make_authenticator(issuer_config(issuer), observer=observer)
    authenticator.replay_store = store
    key = generate_key("ES256")
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})

    def proof() -> str:
        return make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)

    with caplog.at_level(logging.WARNING, logger="jwt_authn.replay_redis"):
        assert await _outcome(authenticator, token, proof()) == "dpop_replay_store_unavailable"
        assert await _outcome(authenticator, token, proof()) == "dpop_replay_store_unavailable"
    assert store.available is False
    assert await store.check() is False
    warnings = [r for r in caplog.records if r.name == "jwt_authn.replay_redis"]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()  # once per outage
    assert token not in caplog.text
    assert observer.reasons == ["dpop_replay_store_unavailable"] * 2
    # Redis comes up: the next proof passes, and the store says it is available again.
    await redis.start()
    assert await _outcome(authenticator, token, proof()) == "ok"
    assert store.available is True
    assert await store.check() is True


async def test_a_dpop_call_without_the_scope_gets_a_dpop_insufficient_scope_challenge(
    make_authenticator: Any, issuer: LoopbackIssuer, issuer_config: Any, clock: Any
) -> None:
    policy = Policy(requirements={METHOD: Requirement(scopes=frozenset({"echo.write"}))})
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    key = generate_key("ES256")
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})
    proof = make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)
    with pytest.raises(PermissionDenied) as caught:
        await authenticator.authenticate([f"DPoP {token}"], METHOD, sender=_sender(proof))
    assert challenges(caught.value, "", ("ES256",)) == (
        "Bearer",
        'DPoP error="insufficient_scope", error_description="insufficient scope",'
        ' scope="echo.write", algs="ES256"',
    )


async def test_an_allow_missing_method_checks_a_dpop_token_sent(
    make_authenticator: Any, issuer: LoopbackIssuer, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(
        issuer_config(issuer), policy=Policy(allow_missing_methods=(METHOD,))
    )
    assert (
        await authenticator.authenticate([], METHOD, sender=_sender("unused")) is None
    )  # no token: anonymous
    key = generate_key("ES256")
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})
    proof = make_dpop_proof(key, htm="POST", htu=HTU, iat=clock.now, token=token)
    principal = await authenticator.authenticate([f"DPoP {token}"], METHOD, sender=_sender(proof))
    assert principal is not None and principal.subject == "alice"
    assert await _outcome(authenticator, token, proof) == "dpop_proof_replayed"  # a token sent is checked
