"""Sign-in throttling rules on a fake clock: limits per account and per address, windows that slide."""

from __future__ import annotations

import pytest

from session_service.throttle import Rule, SignInThrottle, client_address
from toefl_core.errors import ResourceExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[SignInThrottle, Clock]:
    clock = Clock()
    rules = {
        "per_account": Rule(failures=3, window_seconds=60),
        "per_address": Rule(failures=5, window_seconds=60),
    }
    return SignInThrottle(clock=clock, **rules), clock


def test_account_limit_then_the_window_slides() -> None:
    throttle, clock = make()
    for _ in range(3):
        throttle.check(username="Ann", address="a")
        throttle.failed(username="Ann", address="a")
    with pytest.raises(ResourceExhausted, match="try again in 60 s"):
        throttle.check(username="ann", address="b")
    clock.now += 61
    throttle.check(username="ann", address="b")


def test_address_limit_covers_every_username() -> None:
    throttle, _clock = make()
    for index in range(5):
        throttle.failed(username=f"user{index}", address="10.0.0.1")
    with pytest.raises(ResourceExhausted):
        throttle.check(username="someone-else", address="10.0.0.1")
    throttle.check(username="someone-else", address="10.0.0.2")


def test_success_clears_the_account_but_not_the_address() -> None:
    throttle, _clock = make()
    for _ in range(3):
        throttle.failed(username="ann", address="x")
    throttle.succeeded(username="ann")
    throttle.check(username="ann", address="y")
    throttle.failed(username="bob", address="x")
    throttle.failed(username="bob", address="x")
    with pytest.raises(ResourceExhausted):
        throttle.check(username="carol", address="x")


def test_client_address_prefers_the_gateways_forwarded_address() -> None:
    assert client_address([("x-forwarded-for", "203.0.113.7")], "ipv4:127.0.0.1:5000") == "203.0.113.7"
    assert client_address([], "ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert client_address(None, "ipv6:[::1]:5000") == "[::1]"
