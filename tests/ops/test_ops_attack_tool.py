"""``tools.attack``'s own parts: the bad-token flood sends what it claims, and the run's verdict
counts the legitimate clients and the admin probes only (the run itself is not in CI: minutes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from jwt_authn import Unauthenticated
from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings
from tools.attack import bad_tokens, failed_clients

METHOD = "/secureroute.v1.SecureRouteService/SecureRoute"
EXPECTED_REASONS = {
    "unknown-kid": "unknown_kid",
    "bad-signature": "invalid_signature",
    "expired": "token_expired",
    "oversized": "token_too_large",
}


async def test_each_bad_token_is_refused_for_the_reason_its_kind_names(
    issuer: LoopbackIssuer,
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    make_service_settings: Callable[..., ServiceSettings],
) -> None:
    app = await start_service(make_service_settings(issuer.url))
    assert await app.authenticator.wait_ready(timeout_s=15)
    tokens = bad_tokens(issuer, per_kind=3)
    assert set(tokens) == set(EXPECTED_REASONS)
    for kind, kind_tokens in tokens.items():
        assert len(set(kind_tokens)) == 3  # each its own jti: no cache answers the flood
        for token in kind_tokens:
            with pytest.raises(Unauthenticated) as refused:
                await app.authenticator.authenticate([f"Bearer {token}"], METHOD)
            assert refused.value.reason == EXPECTED_REASONS[kind], kind
    # Over the guard's cap, inside the HTTP side's 16 KiB head budget (so the guard answers).
    assert 8 * 1024 < len(tokens["oversized"][0]) < 12 * 1024


def _row(client: str, success_pct: float, *, counts: bool = True) -> dict[str, object]:
    return {"client": client, "counts": counts, "whole": {"success_pct": success_pct}}


def test_the_verdict_counts_legitimate_clients_and_admin_probes_only() -> None:
    results = [
        {
            "attack": "silent-unary",
            "clients": [
                _row("gRPC SecureRoute (token)", 100.0),
                _row("probe: secureroute admin GET /ready", 99.5),
                _row("public HTTP GET /health (before issue 24)", 40.0, counts=False),
            ],
        }
    ]
    assert failed_clients(results) == ["silent-unary: probe: secureroute admin GET /ready 99.5 %"]
    results[0]["clients"][1]["whole"] = {"success_pct": 100.0}  # type: ignore[index]
    assert failed_clients(results) == []
