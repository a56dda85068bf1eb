"""The observer hooks against a real issuer: outcomes, verdicts (what a trace may say) and key fetches.

A ``TracingObserver`` is told the verdict of every authentication (never the token, no claim but
``sub``) and is entered around every key-set refresh and every discovery or JWKS GET; a plain
``AuthnObserver`` is told outcomes only, and an authenticator without one calls nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from jwt_authn import Authenticator, AuthnConfig, AuthnError, AuthnObserver, AuthnVerdict, Policy, Requirement
from jwt_authn.observer import TracingObserver
from jwt_authn.testing import Fault, generate_key


class Recorder:
    """A TracingObserver that writes down everything it is told, in order."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.verdicts: list[AuthnVerdict] = []
        #: (issuer, step, url, the exception that left the block or None), in the order they ended.
        self.fetches: list[tuple[str, str, str, BaseException | None]] = []
        self.open_steps: list[str] = []

    def on_outcome(self, reason: str) -> None:
        self.outcomes.append(reason)

    def on_verdict(self, verdict: AuthnVerdict) -> None:
        self.verdicts.append(verdict)

    @contextlib.contextmanager
    def key_fetch(self, issuer: str, step: str, url: str) -> Iterator[None]:
        self.open_steps.append(step)
        try:
            yield
        except BaseException as error:
            self.fetches.append((issuer, step, url, error))
            raise
        else:
            self.fetches.append((issuer, step, url, None))
        finally:
            self.open_steps.remove(step)


class OutcomesOnly:
    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def on_outcome(self, reason: str) -> None:
        self.outcomes.append(reason)


def test_the_recorder_is_a_tracing_observer_and_outcomes_only_is_not() -> None:
    assert isinstance(Recorder(), TracingObserver)
    only: AuthnObserver = OutcomesOnly()
    assert not isinstance(only, TracingObserver)


@pytest.fixture
async def traced(make_issuer: Any, issuer_config: Any, clock: Any) -> Any:
    """(issuer, authenticator with a Recorder, the recorder), the first key set loaded."""
    issuer = await make_issuer()
    recorder = Recorder()
    policy = Policy(requirements={"/t.S/Admin": Requirement(scopes=frozenset({"admin"}))})
    authenticator = Authenticator(
        AuthnConfig(issuers=(issuer_config(issuer),), clock=clock, policy=policy), observer=recorder
    )
    await authenticator.start()
    assert await authenticator.wait_ready(10.0)
    yield issuer, authenticator, recorder
    await authenticator.close()


async def test_a_valid_token_gives_an_ok_verdict_with_issuer_key_and_subject_only(
    traced: Any, clock: Any
) -> None:
    issuer, authenticator, recorder = traced
    token = issuer.tokens.issue(now=clock.now, sub="alice", claims={"email": "a@example.com"})
    for _ in range(2):  # the second is a token-cache hit: the same verdict
        await authenticator.authenticate([f"Bearer {token}"], "/t.S/M")
    kid = issuer.kid("ES256")
    assert recorder.outcomes == ["ok", "ok"]
    first, second = recorder.verdicts
    assert first == second
    assert (first.result, first.reason, first.issuer, first.subject) == ("ok", "ok", issuer.url, "alice")
    assert first.key_id is not None and first.key_id.startswith(f"{kid}#jkt:")
    # Nothing of the token or of other claims: the verdict has these five fields and no more.
    assert token not in repr(first) and "a@example.com" not in repr(first)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_token", ("unauthenticated", "missing_token", False, None)),
        ("expired", ("unauthenticated", "token_expired", True, "kid")),
        ("unknown_kid", ("unauthenticated", "unknown_kid", True, "stranger")),
        ("foreign_issuer", ("unauthenticated", "issuer_mismatch", False, None)),
        ("scope", ("permission_denied", "insufficient_scope", True, "key")),
    ],
)
async def test_a_rejection_gives_its_result_reason_issuer_and_kid_never_the_subject(
    traced: Any, clock: Any, case: str, expected: tuple[str, str, bool, str | None]
) -> None:
    issuer, authenticator, recorder = traced
    method, values = "/t.S/M", []
    if case == "expired":
        values = [f"Bearer {issuer.tokens.issue(now=clock.now - 7200, sub='alice')}"]
    elif case == "unknown_kid":
        values = [f"Bearer {issuer.tokens.issue(now=clock.now, key=generate_key('ES256', kid='stranger'))}"]
    elif case == "foreign_issuer":
        values = [
            f"Bearer {issuer.tokens.issue(now=clock.now, claims={'iss': 'https://elsewhere.example/'})}"
        ]
    elif case == "scope":
        method, values = "/t.S/Admin", [f"Bearer {issuer.tokens.issue(now=clock.now, sub='alice')}"]
    with pytest.raises(AuthnError):
        await authenticator.authenticate(values, method)
    result, reason, names_issuer, kid = expected
    (verdict,) = recorder.verdicts
    assert recorder.outcomes == [reason]
    assert (verdict.result, verdict.reason) == (result, reason)
    assert verdict.issuer == (issuer.url if names_issuer else None)
    if kid is None:
        assert verdict.key_id is None
    elif kid == "stranger":
        assert verdict.key_id == "stranger"
    elif kid == "kid":
        assert verdict.key_id == issuer.kid("ES256")
    else:  # a verified token refused by policy: the verifying key, and its subject
        assert verdict.key_id is not None and verdict.key_id.startswith(issuer.kid("ES256") + "#jkt:")
    assert verdict.subject == ("alice" if case == "scope" else None)


async def test_a_long_kid_is_cut_in_the_verdict(traced: Any, clock: Any) -> None:
    issuer, authenticator, recorder = traced
    token = issuer.tokens.issue(now=clock.now, key=generate_key("ES256", kid="k" * 200))
    with pytest.raises(AuthnError):
        await authenticator.authenticate([f"Bearer {token}"], "/t.S/M")
    assert recorder.verdicts[0].key_id == "k" * 64


async def test_every_refresh_wraps_its_discovery_and_jwks_fetches(traced: Any) -> None:
    issuer, _authenticator, recorder = traced
    # The first load, done before the fixture returned: refresh > discovery, jwks (inner ones end first).
    assert [(step, url, error) for _iss, step, url, error in recorder.fetches] == [
        ("discovery", f"{issuer.url}/.well-known/openid-configuration", None),
        ("jwks", issuer.jwks_uri, None),
        ("refresh", f"{issuer.url}/.well-known/openid-configuration", None),
    ]
    assert {iss for iss, *_ in recorder.fetches} == {issuer.url}
    assert recorder.open_steps == []


async def test_a_failed_fetch_passes_its_error_through_the_hooks(traced: Any, clock: Any) -> None:
    issuer, authenticator, recorder = traced
    await asyncio.sleep(0.06)  # past the test cooldown (50 ms) since the first load
    recorder.fetches.clear()
    issuer.fault = Fault(status=500, only="jwks")
    stranger = issuer.tokens.issue(now=clock.now, key=generate_key("ES256", kid="stranger"))
    with pytest.raises(AuthnError):  # the unknown kid asks for an on-demand refresh, which fails
        await authenticator.authenticate([f"Bearer {stranger}"], "/t.S/M")
    steps = [(step, type(error).__name__ if error else None) for _iss, step, _url, error in recorder.fetches]
    assert steps == [("discovery", None), ("jwks", "KeySourceError"), ("refresh", "KeySourceError")]
    assert "HTTP 500" in str(recorder.fetches[1][3])


async def test_an_outcomes_only_observer_is_told_outcomes_and_nothing_breaks(
    make_issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    issuer = await make_issuer()
    observer = OutcomesOnly()  # it has on_outcome only: anything else asked of it would raise
    authenticator = await make_authenticator(issuer_config(issuer), observer=observer)
    token = issuer.tokens.issue(now=clock.now)
    await authenticator.authenticate([f"Bearer {token}"], "/t.S/M")
    with pytest.raises(AuthnError):
        await authenticator.authenticate([], "/t.S/M")
    assert observer.outcomes == ["ok", "missing_token"]
