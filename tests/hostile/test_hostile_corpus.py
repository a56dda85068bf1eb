"""Every case of the hostile corpus, over gRPC and over HTTP, against the live stack.

Each case asserts its exact gRPC status and reason and its HTTP status (and reason), and
that the attacker's issuer was never contacted. Whatever a case sends, no answer may be a
5xx, UNKNOWN or INTERNAL, nothing may hang (every call has a deadline), and no log line
may carry a token of the corpus or its signature.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest
from corpus import CASES, Case, credentials_of
from grpc_health.v1 import health_pb2
from hostile_wire import call_grpc, call_http

from jwt_authn.config import IssuerConfig

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The cooldown the service runs with (jwt_authn's default): at most one on-demand JWKS
#: refresh per cooldown, whatever the corpus sends.
COOLDOWN_S = IssuerConfig(issuer="https://x.example", audiences=("a",)).cooldown_s


def _params(transport: str) -> list[object]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=case.known_bug[transport])]
            if transport in case.known_bug
            else [],
        )
        for case in CASES
    ]


def _explain(case: Case, got: object) -> str:
    return f"{case.id}: {case.doc}\n  got {got}"


@pytest.mark.parametrize("case", _params("grpc"))
async def test_case_over_grpc(case: Case, hostile_stack) -> None:  # type: ignore[no-untyped-def]
    values = case.build(hostile_stack.context())
    outcome = await call_grpc(hostile_stack.stub, values)
    assert outcome.code not in ("UNKNOWN", "INTERNAL", "DEADLINE_EXCEEDED"), _explain(case, outcome)
    assert outcome.code == case.grpc, _explain(case, outcome)
    if case.grpc == "OK":
        assert outcome.subject == "alice", _explain(case, outcome)
    if case.reason is not None:
        assert outcome.details == case.reason.replace("_", " "), _explain(case, outcome)
        assert outcome.challenge is not None and outcome.challenge.startswith("Bearer"), _explain(
            case, outcome
        )
    assert hostile_stack.attacker.discovery_fetches == hostile_stack.attacker.jwks_fetches == 0


@pytest.mark.parametrize("case", _params("http"))
async def test_case_over_http(case: Case, hostile_stack) -> None:  # type: ignore[no-untyped-def]
    values = case.build(hostile_stack.context())
    outcome = await call_http(hostile_stack.http, hostile_stack.facade_url, values)
    assert outcome.status < 500, _explain(case, outcome)
    assert outcome.status in case.http, _explain(case, outcome)
    if outcome.status == 200:
        assert outcome.subject == "alice", _explain(case, outcome)
    if outcome.status == 401:
        # RFC 9110 §15.5.2: every 401 carries a challenge.
        assert outcome.challenge is not None and outcome.challenge.startswith("Bearer"), _explain(
            case, outcome
        )
    reason = case.expected_http_reason
    if reason is not None:
        assert outcome.message == reason.replace("_", " "), _explain(case, outcome)
    # No answer quotes the credential, not even aiohttp's parser errors (GuardedRequestHandler).
    assert not [s[:24] for s in credentials_of(values) if s[:32] in outcome.body], _explain(case, outcome)
    assert hostile_stack.attacker.discovery_fetches == hostile_stack.attacker.jwks_fetches == 0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_no_token_reaches_any_log(hostile_stack, capfd: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """Replay the whole corpus with every logger at DEBUG (and asyncio debug on, which makes
    aiohttp log parser errors): no line, Python log or C-core stderr, holds a credential."""
    root = logging.getLogger()
    collect, old_level = _Collect(), root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    secrets: set[str] = set()
    try:
        ctx = hostile_stack.context()
        for case in CASES:
            values = case.build(ctx)
            secrets.update(credentials_of(values))
            await call_grpc(hostile_stack.stub, values)
            await call_http(hostile_stack.http, hostile_stack.facade_url, values)
    finally:
        loop.set_debug(False)
        root.setLevel(old_level)
        root.removeHandler(collect)
    captured = capfd.readouterr()
    lines = [*collect.lines, *captured.out.splitlines(), *captured.err.splitlines()]
    assert len(collect.lines) > len(CASES)  # the capture works: the stack logs each rejection
    leaks = sorted({secret[:24] + "..." for secret in secrets for line in lines if secret in line})
    assert not leaks, f"credentials in logs: {leaks}"


async def test_stack_survives_the_corpus_and_fetches_stay_bounded(hostile_stack) -> None:  # type: ignore[no-untyped-def]
    """After everything above: still SERVING, still answering, and the trusted issuer was
    fetched at most once at start plus once per cooldown (unknown kids are rate limited)."""
    reply = await hostile_stack.health.Check(
        health_pb2.HealthCheckRequest(service="secureroute.v1.SecureRouteService"), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    ctx = hostile_stack.context()
    assert (
        await call_grpc(hostile_stack.stub, (f"Bearer {ctx.issuer.tokens.issue(alg='ES256')}",))
    ).code == "OK"
    elapsed = time.monotonic() - hostile_stack.started_at
    allowed = 1 + math.ceil(elapsed / COOLDOWN_S)  # the start, then one per cooldown at most
    issuer = hostile_stack.issuer
    assert 1 <= issuer.jwks_fetches <= allowed, (issuer.jwks_fetches, elapsed)
    assert issuer.discovery_fetches == issuer.jwks_fetches
    assert hostile_stack.attacker.discovery_fetches == hostile_stack.attacker.jwks_fetches == 0
