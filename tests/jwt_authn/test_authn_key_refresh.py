"""The key-set lifecycle against a real issuer: refresh pacing, on-demand refresh, outages.

Observed through the issuer's fetch counters and the cache's own counters
(``authenticator.key_sets[issuer_url]``). Pacing settings are tiny (cooldown 50 ms, backoff
50-200 ms, see ``issuer_config``), so waits are short and always bounded.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from authn_helpers import outcome

from jwt_authn import KeySetUnavailable
from jwt_authn.testing import Fault, LoopbackIssuer, generate_key

COOLDOWN_S = 0.05  # issuer_config's cooldown_s


def _stranger(issuer: LoopbackIssuer, now: float, kid: str = "stranger") -> str:
    """A well-formed token whose kid the issuer never published."""
    return issuer.tokens.issue(now=now, key=generate_key("ES256", kid=kid))


# --- refresh pacing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "expected_delay_s"),
    [
        ("max-age=5", 5.0),
        ("public, max-age=7, must-revalidate", 7.0),
        ('max-age="8"', 8.0),
        ("max-age=0", 2.0),  # raised to min_refresh_interval_s
        ("max-age=100000", 50.0),  # lowered to max_refresh_interval_s
        ("no-store, max-age=5", 20.0),  # no-store: the default interval
        ("no-cache", 20.0),
        (None, 20.0),
    ],
)
async def test_cache_control_max_age_sets_the_next_refresh_within_bounds(
    make_issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    cache_control: str | None,
    expected_delay_s: float,
) -> None:
    issuer = await make_issuer(cache_control=cache_control)
    config = issuer_config(
        issuer, refresh_interval_s=20.0, min_refresh_interval_s=2.0, max_refresh_interval_s=50.0
    )
    authenticator = await make_authenticator(config)
    assert authenticator.key_sets[issuer.url]._next_delay(True, 0) == expected_delay_s


async def test_failed_refreshes_back_off_exponentially_up_to_the_cap(
    issuer: Any, make_authenticator: Any, issuer_config: Any
) -> None:
    config = issuer_config(issuer, retry_initial_backoff_s=1.0, retry_max_backoff_s=8.0)
    authenticator = await make_authenticator(config)
    key_set = authenticator.key_sets[issuer.url]
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (200, 8.0)):
        delays = [key_set._next_delay(False, failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, min(delays), max(delays))
        assert len(set(delays)) > 1  # jittered, so a fleet does not retry in lockstep


async def test_background_refresh_runs_without_requests_and_picks_up_new_keys(
    issuer: Any, make_authenticator: Any, issuer_config: Any, wait_until: Any, clock: Any
) -> None:
    config = issuer_config(issuer, refresh_interval_s=0.05, min_refresh_interval_s=0.01, cooldown_s=60)
    authenticator = await make_authenticator(config)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: issuer.jwks_fetches >= 3, "three background refreshes")
    issuer.rotate("ES256")
    await wait_until(lambda: key_set.key_set is not None and issuer.kid("ES256") in key_set.key_set.kids)
    # The long cooldown forbids on-demand refreshes: the background loop did the work.
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"
    assert key_set.on_demand_refreshes == 0


async def test_long_max_age_means_no_refresh_until_it_is_due(
    make_issuer: Any, make_authenticator: Any, issuer_config: Any
) -> None:
    issuer = await make_issuer(cache_control="max-age=3600")
    config = issuer_config(issuer, refresh_interval_s=0.05, min_refresh_interval_s=0.01)
    await make_authenticator(config)
    await asyncio.sleep(0.3)  # six default intervals: the issuer's max-age wins
    assert issuer.jwks_fetches == 1


async def test_close_stops_background_refreshing(
    issuer: Any, make_authenticator: Any, issuer_config: Any, wait_until: Any
) -> None:
    config = issuer_config(issuer, refresh_interval_s=0.02, min_refresh_interval_s=0.01)
    authenticator = await make_authenticator(config)
    await wait_until(lambda: issuer.jwks_fetches >= 2, "a background refresh")
    await authenticator.close()
    await asyncio.sleep(0.05)  # a request already on the wire may still reach the issuer
    fetches = issuer.jwks_fetches
    await asyncio.sleep(0.2)  # ten refresh intervals
    assert issuer.jwks_fetches == fetches


# --- on-demand refresh -------------------------------------------------------------------------


async def test_unknown_kid_triggers_one_on_demand_refresh(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    key_set = authenticator.key_sets[issuer.url]
    await asyncio.sleep(COOLDOWN_S * 2)
    assert await outcome(authenticator, _stranger(issuer, clock.now)) == "unknown_kid"
    assert (issuer.jwks_fetches, key_set.on_demand_refreshes) == (2, 1)


async def test_200_concurrent_unknown_kids_share_at_most_one_fetch(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    await asyncio.sleep(COOLDOWN_S * 2)
    tokens = [_stranger(issuer, clock.now, kid=f"stranger-{n}") for n in range(200)]
    reasons = await asyncio.wait_for(asyncio.gather(*(outcome(authenticator, t) for t in tokens)), 10)
    assert set(reasons) == {"unknown_kid"}
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (2, 2)  # the warm-up and one refresh


async def test_on_demand_refresh_respects_the_cooldown(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, cooldown_s=60))
    for n in range(5):
        assert await outcome(authenticator, _stranger(issuer, clock.now, kid=f"k{n}")) == "unknown_kid"
    assert issuer.jwks_fetches == 1  # only the warm-up
    assert authenticator.key_sets[issuer.url].on_demand_refreshes == 0


async def test_a_refresh_skipped_by_the_cooldown_is_logged_at_debug_with_the_next_allowed_time(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, cooldown_s=60))
    with caplog.at_level(logging.DEBUG, logger="jwt_authn.jwks"):
        assert await outcome(authenticator, _stranger(issuer, clock.now)) == "unknown_kid"
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [r.levelno for r in caplog.records if "skipped" in r.getMessage()] == [logging.DEBUG], skipped
    assert f"refresh for {issuer.url} skipped (cooldown)" in skipped[0]
    assert re.search(r"next allowed at \d\d:\d\d:\d\dZ, in (59|60)\.\d s$", skipped[0]), skipped[0]


async def test_kid_still_unknown_after_a_refresh_is_rejected_without_waiting_for_a_fetch(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, fetch_timeout_s=5.0))
    await asyncio.sleep(COOLDOWN_S * 2)
    assert await outcome(authenticator, _stranger(issuer, clock.now, kid="x")) == "unknown_kid"
    assert issuer.jwks_fetches == 2
    # A slow refresh is in flight: a remembered unknown kid does not wait for it...
    issuer.fault = Fault(delay_s=3.0)
    cache = authenticator.key_sets[issuer.url]
    cache._refresh_once()
    await asyncio.sleep(0)
    answer = asyncio.ensure_future(outcome(authenticator, _stranger(issuer, clock.now, kid="x")))
    await asyncio.sleep(0.2)
    assert answer.done() and answer.result() == "unknown_kid"
    # ...while a kid never seen before waits for the fetch it joined (single flight).
    waiting = asyncio.ensure_future(outcome(authenticator, _stranger(issuer, clock.now, kid="y")))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert await asyncio.wait_for(waiting, 10) == "unknown_kid"


async def test_remembered_unknown_kid_gets_a_refresh_again_after_the_cooldown(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, publish_key: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    await asyncio.sleep(COOLDOWN_S * 2)
    early_key = generate_key("ES256", kid="early")
    early_token = issuer.tokens.issue(now=clock.now, key=early_key)
    assert await outcome(authenticator, early_token) == "unknown_kid"  # used before it was published
    publish_key(issuer, early_key)
    await asyncio.sleep(COOLDOWN_S * 2)
    principal = await authenticator.verify(early_token)
    assert principal.subject == "alice"


async def test_rotation_new_key_accepted_on_first_use_and_removed_key_rejected_after_refresh(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), token_cache_size=0)
    key_set = authenticator.key_sets[issuer.url]
    old_token = issuer.tokens.issue(now=clock.now)
    old_kid = issuer.rotate("ES256")
    new_token = issuer.tokens.issue(now=clock.now)
    await asyncio.sleep(COOLDOWN_S * 2)
    assert await outcome(authenticator, new_token) == "accepted"
    assert key_set.on_demand_refreshes == 1
    assert await outcome(authenticator, old_token) == "accepted"  # still published
    issuer.withdraw(old_kid)
    assert await outcome(authenticator, old_token) == "accepted"  # not refreshed yet
    await asyncio.sleep(COOLDOWN_S * 2)
    assert await outcome(authenticator, _stranger(issuer, clock.now)) == "unknown_kid"  # the refresh
    assert await outcome(authenticator, old_token) == "unknown_kid"
    assert await outcome(authenticator, new_token) == "accepted"


# --- outages -----------------------------------------------------------------------------------


async def test_issuer_outage_after_warm_up_keeps_valid_tokens_working(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), token_cache_size=0)
    key_set = authenticator.key_sets[issuer.url]
    await issuer.stop()
    await asyncio.sleep(COOLDOWN_S * 2)
    assert await outcome(authenticator, _stranger(issuer, clock.now)) == "unknown_kid"
    assert key_set.refresh_failures == 1  # the on-demand refresh met the outage
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


async def test_a_failed_refresh_names_its_cause(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    await issuer.stop()
    await asyncio.sleep(COOLDOWN_S * 2)
    with caplog.at_level(logging.WARNING, logger="jwt_authn.jwks"):
        assert await outcome(authenticator, _stranger(issuer, clock.now)) == "unknown_kid"
    failed = [r.getMessage() for r in caplog.records if "refresh failed" in r.getMessage()]
    assert failed == [
        f"key set refresh failed for {issuer.url}: discovery: connection refused by 127.0.0.1:{issuer.port}"
    ]


async def test_issuer_down_at_start_is_unavailable_then_recovers_without_restart(
    *,
    make_issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    unused_port: Any,
    wait_until: Any,
) -> None:
    issuer = await make_issuer(port=unused_port())
    await issuer.stop()
    authenticator = await make_authenticator(issuer_config(issuer), ready=False)
    key_set = authenticator.key_sets[issuer.url]
    await wait_until(lambda: key_set.refresh_failures >= 2, "two failed refreshes")
    with pytest.raises(KeySetUnavailable) as caught:
        await authenticator.verify(issuer.tokens.issue(now=clock.now))
    assert caught.value.reason == "key_set_unavailable"
    assert not authenticator.ready
    await issuer.start()
    assert await authenticator.wait_ready(10)
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


async def test_slow_issuer_costs_at_most_the_fetch_timeout(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    issuer.fault = Fault(delay_s=5)
    authenticator = await make_authenticator(issuer_config(issuer, fetch_timeout_s=0.5), ready=False)
    # A generous bound, not a performance assertion: the request gives up with the 0.5 s fetch;
    # without the fetch timeout it would wait for the 5 s answer (and be accepted).
    with pytest.raises(KeySetUnavailable):
        await asyncio.wait_for(authenticator.verify(issuer.tokens.issue(now=clock.now)), 10)
    assert authenticator.key_sets[issuer.url].refresh_failures >= 1


async def test_a_request_waits_at_most_refresh_wait_s_for_a_slow_key_refresh_which_goes_on_without_it(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, wait_until: Any
) -> None:
    """A new kid while the JWKS endpoint dribbles: the caller gets its 401 after refresh_wait_s,
    not after the whole fetch (which used to turn the facade's 401 into a 504); the fetch
    finishes in the background and the same token is accepted once it has."""
    config = issuer_config(issuer, refresh_wait_s=0.05, fetch_timeout_s=30)
    authenticator = await make_authenticator(config, token_cache_size=0)
    key_set = authenticator.key_sets[issuer.url]
    issuer.rotate("ES256")
    new_token = issuer.tokens.issue(now=clock.now)
    issuer.fault = Fault(delay_s=1.0, only="jwks")
    await asyncio.sleep(COOLDOWN_S * 2)
    # A bound for a hang, not a speed assertion: without refresh_wait_s this waits the 1 s answer
    # and is accepted; with it the caller is told at once that the kid is unknown.
    assert await asyncio.wait_for(outcome(authenticator, new_token), 10) == "unknown_kid"
    assert key_set.refresh_successes == 1  # the slow refresh has not finished
    issuer.fault = Fault()
    await wait_until(lambda: key_set.refresh_successes == 2, "the background refresh")
    assert await outcome(authenticator, new_token) == "accepted"
    assert key_set.on_demand_refreshes == 1


async def test_before_any_key_set_a_slow_issuer_gets_a_prompt_unavailable(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    issuer.fault = Fault(delay_s=30)
    config = issuer_config(issuer, refresh_wait_s=0.05, fetch_timeout_s=30)
    authenticator = await make_authenticator(config, ready=False)
    with pytest.raises(KeySetUnavailable) as caught:
        await asyncio.wait_for(authenticator.verify(issuer.tokens.issue(now=clock.now)), 10)
    assert caught.value.reason == "key_set_unavailable"


async def test_key_set_older_than_max_staleness_is_not_used(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, wait_until: Any
) -> None:
    config = issuer_config(issuer, max_staleness_s=0.5)
    authenticator = await make_authenticator(config, token_cache_size=0)
    key_set = authenticator.key_sets[issuer.url]
    issuer.fault = Fault(status=503)  # every refresh from now on fails
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"
    await wait_until(lambda: (key_set.age_s or 0) > 0.5, "the key set to go stale")
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "key_set_unavailable"
    assert key_set.refresh_failures >= 1  # it did try to refresh on demand
    issuer.fault = Fault()
    await asyncio.sleep(COOLDOWN_S * 2)
    # The next request refreshes on demand: fresh keys, no restart.
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "accepted"


# --- several issuers ---------------------------------------------------------------------------


async def test_tokens_iss_picks_the_issuer_and_each_issuer_has_its_own_audiences(
    make_issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    orders = await make_issuer(audience="orders")
    billing = await make_issuer(audience="billing")
    authenticator = await make_authenticator(
        issuer_config(orders, audiences=("orders",)), issuer_config(billing, audiences=("billing",))
    )
    principal = await authenticator.verify(orders.tokens.issue(now=clock.now, aud="orders"))
    assert principal.issuer == orders.url
    principal = await authenticator.verify(billing.tokens.issue(now=clock.now, aud="billing"))
    assert principal.issuer == billing.url
    # Audiences do not leak between issuers.
    assert (
        await outcome(authenticator, orders.tokens.issue(now=clock.now, aud="billing")) == "audience_mismatch"
    )
    # Claiming the other issuer does not make the other issuer's keys ours, nor ours its.
    forged = orders.tokens.issue(now=clock.now, aud="billing", claims={"iss": billing.url})
    assert await outcome(authenticator, forged) == "unknown_kid"
    forged_same_kid = orders.tokens.issue(
        now=clock.now, aud="billing", claims={"iss": billing.url}, headers={"kid": billing.kid("ES256")}
    )
    assert await outcome(authenticator, forged_same_kid) == "invalid_signature"


async def test_one_issuer_down_does_not_block_the_other(
    *,
    make_issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    unused_port: Any,
    wait_until: Any,
) -> None:
    healthy = await make_issuer()
    down = await make_issuer(port=unused_port())
    await down.stop()
    authenticator = await make_authenticator(issuer_config(healthy), issuer_config(down), ready=False)
    await wait_until(lambda: authenticator.key_sets[healthy.url].ever_loaded, "the healthy issuer's keys")
    assert await outcome(authenticator, healthy.tokens.issue(now=clock.now)) == "accepted"
    assert await outcome(authenticator, down.tokens.issue(now=clock.now)) == "key_set_unavailable"
    assert not authenticator.ready  # ready means every issuer
