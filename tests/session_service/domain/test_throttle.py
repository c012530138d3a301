"""Sign-in throttling rules: holds that double, windows that forget, and the addresses a hold spares."""

from __future__ import annotations

import pytest

from session_service.domain.throttle import (
    PER_ACCOUNT_AND_ADDRESS,
    Counter,
    Rule,
    after_failure,
    check_hold,
    check_sign_in,
)
from session_service.sign_in import client_address
from toefl_core.errors import ResourceExhausted

RULE = Rule(failures=3, window_seconds=60, first_hold_seconds=2, max_hold_seconds=10)


def failures(count: int, rule: Rule = RULE, *, start_ms: int = 0, step_ms: int = 1000) -> Counter | None:
    counter: Counter | None = None
    for n in range(count):
        counter = after_failure(counter, rule, now_ms=start_ms + n * step_ms)
    return counter


def test_no_hold_below_the_limit_then_a_hold_that_doubles_up_to_its_ceiling() -> None:
    assert failures(2) == Counter(failures=2, last_failure_ms=1000, held_until_ms=1000)
    holds = [c.held_until_ms - c.last_failure_ms for c in (failures(n) for n in range(3, 8)) if c is not None]
    assert holds == [2000, 4000, 8000, 10_000, 10_000]


def test_a_held_key_says_how_long_to_wait_and_lets_go_after() -> None:
    counter = failures(3)
    assert counter is not None
    with pytest.raises(ResourceExhausted) as refused:
        check_hold(counter, now_ms=counter.held_until_ms - 1500)
    assert refused.value.reason == "SIGN_IN_THROTTLED" and refused.value.retry_after_seconds == 1.5
    check_hold(counter, now_ms=counter.held_until_ms)


def test_a_key_idle_for_a_window_starts_afresh() -> None:
    counter = failures(3)
    assert counter is not None
    later = after_failure(counter, RULE, now_ms=counter.last_failure_ms + 60_000)
    assert later.failures == 1 and later.held_until_ms <= later.last_failure_ms


def test_the_pair_rule_is_strict() -> None:
    """Five tries from one address, then at least 30 s: a guesser there gets about a hundred a day."""
    held = failures(PER_ACCOUNT_AND_ADDRESS.failures, PER_ACCOUNT_AND_ADDRESS)
    assert held is not None and held.held_until_ms - held.last_failure_ms == 30_000
    day = failures(200, PER_ACCOUNT_AND_ADDRESS, step_ms=0)
    assert day is not None and day.held_until_ms == 15 * 60 * 1000


def test_the_accounts_own_address_is_spared_the_account_and_address_holds_but_not_its_own() -> None:
    held = failures(3)
    assert held is not None
    now = held.last_failure_ms
    check_sign_in(pair=None, account=held, address=held, known_address=True, now_ms=now)
    for pair, account, address in ((held, None, None), (None, held, None), (None, None, held)):
        with pytest.raises(ResourceExhausted):
            check_sign_in(pair=pair, account=account, address=address, known_address=False, now_ms=now)
    with pytest.raises(ResourceExhausted):
        check_sign_in(pair=held, account=None, address=None, known_address=True, now_ms=now)


def test_client_address_prefers_the_gateways_forwarded_address() -> None:
    assert client_address([("x-forwarded-for", "203.0.113.7")], "ipv4:127.0.0.1:5000") == "203.0.113.7"
    assert client_address([], "ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert client_address(None, "ipv6:[::1]:5000") == "[::1]"
