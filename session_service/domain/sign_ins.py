"""What a refresh token may do: renew its sign-in once, be answered again when a retry was lost, or end it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# A refresh retried within this long, whose new token is still unused, is answered that same new token: a client
# whose reply was lost on the network keeps its sign-in. Any other second use is taken for a stolen token.
RETRY_GRACE_MS = 30_000


class Verdict(enum.Enum):
    RENEW = "renew"
    ANSWER_AGAIN = "answer_again"
    REUSED = "reused"
    ENDED = "ended"


@dataclass(frozen=True)
class SignInState:
    expires_ms: int
    revoked: bool
    account_usable: bool

    def ended(self, now_ms: int) -> bool:
        return self.revoked or not self.account_usable or now_ms >= self.expires_ms


def refresh_verdict(
    state: SignInState, *, spent_now: bool, spent_ms: int | None, successor_unused: bool, now_ms: int
) -> Verdict:
    """`spent_now`: this call spent the token (nobody had); else it was spent at `spent_ms`, and its successor is
    unused or not."""
    if state.ended(now_ms):
        return Verdict.ENDED
    if spent_now:
        return Verdict.RENEW
    if spent_ms is not None and now_ms - spent_ms <= RETRY_GRACE_MS and successor_unused:
        return Verdict.ANSWER_AGAIN
    return Verdict.REUSED
