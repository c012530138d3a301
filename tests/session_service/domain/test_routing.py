"""Routing after the router: the estimate against the cut picks the upper or the lower module, and says why."""

from __future__ import annotations

from session_service.domain.routing import RoutingRule
from session_service.domain.states import STAGE_LOWER, STAGE_UPPER

RULE = RoutingRule(rule="theta_cut", cut=0.25)


def test_an_estimate_at_or_above_the_cut_goes_up() -> None:
    assert RULE.route(0.25) == (STAGE_UPPER, "theta_cut: theta_hat 0.250 >= cut 0.250 -> upper")
    assert RULE.route(3.0)[0] == STAGE_UPPER


def test_an_estimate_below_the_cut_goes_down() -> None:
    assert RULE.route(0.2499) == (STAGE_LOWER, "theta_cut: theta_hat 0.250 < cut 0.250 -> lower")
    assert RULE.route(-6.0)[0] == STAGE_LOWER
