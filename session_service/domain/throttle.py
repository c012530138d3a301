"""Sign-in throttling rules: failures counted per key, held back with a doubling wait, and who a hold spares."""

from __future__ import annotations

import math
from dataclasses import dataclass

from toefl_core.errors import ResourceExhausted


@dataclass(frozen=True)
class Rule:
    """`failures` within `window_seconds` of each other hold the key back, first for `first_hold_seconds`, each
    further failure doubling the hold up to `max_hold_seconds`; a key idle for a window starts afresh."""

    failures: int
    window_seconds: float
    first_hold_seconds: float
    max_hold_seconds: float

    def hold_ms(self, failures: int) -> int:
        if failures < self.failures:
            return 0
        doublings = min(failures - self.failures, 32)
        seconds: float = min(self.first_hold_seconds * 2.0**doublings, self.max_hold_seconds)
        return round(seconds * 1000)


# One account from one address: strict. Five tries, then 30 s, doubling to 15 min: about 100 guesses a day.
PER_ACCOUNT_AND_ADDRESS = Rule(failures=5, window_seconds=15 * 60, first_hold_seconds=30, max_hold_seconds=15 * 60)
# One account from every address together, against guessing spread over many machines. Slow to start and short,
# and never held against an address the account signed in from before: its owner is not locked out.
PER_ACCOUNT = Rule(failures=20, window_seconds=60 * 60, first_hold_seconds=1, max_hold_seconds=60)
# One address (a school behind one public address): a ceiling far above a class's typos, then a short hold
# that spares the accounts that signed in from it before.
PER_ADDRESS_FAILURES = 100
PER_ADDRESS_WINDOW_SECONDS = 15 * 60
PER_ADDRESS_MAX_HOLD_SECONDS = 60

# An address where an account signed in within this long is its owner's (home, school): spared by the holds on
# the account and on the address.
KNOWN_ADDRESS_DAYS = 30


def per_address(failures: int) -> Rule:
    return Rule(
        failures=failures,
        window_seconds=PER_ADDRESS_WINDOW_SECONDS,
        first_hold_seconds=1,
        max_hold_seconds=PER_ADDRESS_MAX_HOLD_SECONDS,
    )


@dataclass(frozen=True)
class Counter:
    failures: int
    last_failure_ms: int
    held_until_ms: int


def after_failure(counter: Counter | None, rule: Rule, *, now_ms: int) -> Counter:
    """The counter once one more failure is counted."""
    fresh = counter is None or now_ms - counter.last_failure_ms >= rule.window_seconds * 1000
    failures = 1 if counter is None or fresh else counter.failures + 1
    held = rule.hold_ms(failures)
    previous_hold = 0 if counter is None else counter.held_until_ms
    return Counter(failures=failures, last_failure_ms=now_ms, held_until_ms=max(previous_hold, now_ms + held))


def check_hold(counter: Counter | None, *, now_ms: int) -> None:
    """ResourceExhausted while the counter holds its key back; the same whether the account exists or not."""
    if counter is None or now_ms >= counter.held_until_ms:
        return
    remaining = (counter.held_until_ms - now_ms) / 1000
    raise ResourceExhausted(
        f"too many failed sign-ins; try again in {math.ceil(remaining)} s",
        reason="SIGN_IN_THROTTLED",
        retry_after_seconds=remaining,
    )


def check_sign_in(
    *, pair: Counter | None, account: Counter | None, address: Counter | None, known_address: bool, now_ms: int
) -> None:
    """Refuse a sign-in held back by its counters. The account's own address is spared the account's and the
    address's holds (an attacker elsewhere, or classmates' typos, do not lock it out), never the pair's."""
    check_hold(pair, now_ms=now_ms)
    if not known_address:
        check_hold(account, now_ms=now_ms)
        check_hold(address, now_ms=now_ms)
