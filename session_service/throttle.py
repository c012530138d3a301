"""Sign-in throttling: too many failed sign-ins for one account or from one address answer RESOURCE_EXHAUSTED."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from toefl_core.errors import ResourceExhausted

# Bounds the memory an attacker spraying usernames or addresses can make us hold.
MAX_TRACKED_KEYS = 100_000


@dataclass(frozen=True)
class Rule:
    failures: int
    window_seconds: float


PER_ACCOUNT = Rule(failures=5, window_seconds=15 * 60)
PER_ADDRESS = Rule(failures=20, window_seconds=15 * 60)


class SignInThrottle:
    """Failures in a sliding window per account and per client address, kept in this process's memory."""

    def __init__(
        self,
        *,
        per_account: Rule = PER_ACCOUNT,
        per_address: Rule = PER_ADDRESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = {"account": per_account, "address": per_address}
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        window = self._rules[key[0]].window_seconds
        stamps = self._failures.get(key, deque())
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if not stamps:
            self._failures.pop(key, None)
        return stamps

    def check(self, *, username: str, address: str) -> None:
        """ResourceExhausted while either limit is reached; the same answer whether the account exists or not."""
        now = self._clock()
        for key in (("account", username.lower()), ("address", address)):
            rule = self._rules[key[0]]
            stamps = self._recent(key, now)
            if len(stamps) >= rule.failures:
                # The oldest failure in the window leaves it first: then one more attempt is allowed.
                remaining = stamps[0] + rule.window_seconds - now
                raise ResourceExhausted(
                    f"too many failed sign-ins; try again in {math.ceil(remaining)} s",
                    reason="SIGN_IN_THROTTLED",
                    retry_after_seconds=remaining,
                )

    def failed(self, *, username: str, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= MAX_TRACKED_KEYS:
            oldest = min(self._failures, key=lambda key: self._failures[key][-1])
            del self._failures[oldest]
        for key in (("account", username.lower()), ("address", address)):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *, username: str) -> None:
        self._failures.pop(("account", username.lower()), None)


def client_address(metadata: Iterable[tuple[str, str | bytes]] | None, peer: str) -> str:
    """The gateway's x-forwarded-for (it never passes a client's own), else the gRPC peer's host."""
    for name, value in metadata or ():
        if name == "x-forwarded-for" and isinstance(value, str) and value:
            return value.split(",", 1)[0].strip()
    # "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path"
    kind, _, rest = peer.partition(":")
    return rest.rsplit(":", 1)[0] if kind in ("ipv4", "ipv6") else peer
