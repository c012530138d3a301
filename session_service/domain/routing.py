"""Routing after a router module: its ability estimate against the blueprint's cut picks the second stage."""

from __future__ import annotations

from dataclasses import dataclass

from session_service.domain.states import STAGE_LOWER, STAGE_UPPER


@dataclass(frozen=True)
class RoutingRule:
    """theta_hat >= cut routes to the upper module, anything else to the lower one."""

    rule: str
    cut: float

    def route(self, theta: float) -> tuple[str, str]:
        """The stage routed to, and the decision as recorded with the router module (for replay and audit)."""
        upper = theta >= self.cut
        sign = ">=" if upper else "<"
        decision = (
            f"{self.rule}: theta_hat {theta:.3f} {sign} cut {self.cut:.3f} -> {'upper' if upper else 'lower'}"
        )
        return (STAGE_UPPER if upper else STAGE_LOWER), decision
