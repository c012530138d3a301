"""Readiness: every backend SERVING by the gRPC health protocol, and each serving its own, distinct database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2
from toefl.common.v1 import ownership_pb2

from gateway.backends import Backend
from toefl_core.auth import SERVICE_TTL_SECONDS, ServiceToken

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_OWNERSHIP = "/toefl.common.v1.DatabaseOwnership/GetDatabaseOwnership"


@dataclass(frozen=True)
class Verdict:
    """`miswired` is non-empty when the API must refuse traffic; `problems` lists everything /readyz reports."""

    ready: bool
    problems: tuple[str, ...]
    miswired: str
    reports: dict[str, dict[str, str]] = field(default_factory=dict)


NOT_CHECKED = Verdict(ready=False, problems=("readiness not checked yet",), miswired="")


@dataclass
class _BackendReport:
    problems: list[str] = field(default_factory=list)
    miswired: list[str] = field(default_factory=list)
    ownership: ownership_pb2.DatabaseOwnershipReport | None = None


class Readiness:
    """Checks the backends on demand and in the background; the last verdict gates the API."""

    def __init__(
        self,
        backends: Sequence[Backend],
        channels: Mapping[str, grpc.aio.Channel],
        *,
        token_key: str,
        interval: float,
    ) -> None:
        self._backends = tuple(backends)
        self._channels = channels
        # Renewed halfway through its life, so a check never sends a token about to lapse.
        self._token = ServiceToken(token_key, subject="gateway", renew_margin_seconds=SERVICE_TTL_SECONDS / 2)
        self._interval = interval
        self.verdict = NOT_CHECKED

    async def _check_backend(self, backend: Backend) -> _BackendReport:
        report = _BackendReport()
        channel = self._channels.get(backend.name)
        if channel is None:
            report.problems.append(f"{backend.name} is not configured (no address)")
            return report
        health = channel.unary_unary(
            _HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        names = [service.full_name for service in backend.services] or [""]
        missing: list[str] = []
        for name in names:
            try:
                reply = await health(health_pb2.HealthCheckRequest(service=name), timeout=CHECK_TIMEOUT_SECONDS)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    missing.append(name)
                    continue
                # The address stays in the log: /readyz is on the public port and names no internal address.
                log.warning(
                    "readiness: %s at %s is unreachable: %s", backend.name, backend.address, exc.code().name
                )
                report.problems.append(f"{backend.name} is unreachable: {exc.code().name}")
                return report
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                report.problems.append(f"{backend.name} reports {name or 'overall health'} {status}")
        if missing:
            message = f"{backend.name} does not serve {', '.join(missing)}"
            if len(missing) == len(names):
                # Something answers at the address but serves none of this backend's API: another of our services
                # wired in its place (its ownership report below says which).
                report.miswired.append(message)
            else:
                # Part of the API: an older build, not a swap; the rest of its routes keep working.
                report.problems.append(message)
        if backend.expected_owner is None:
            return report
        ownership = channel.unary_unary(
            _OWNERSHIP,
            request_serializer=ownership_pb2.GetDatabaseOwnershipRequest.SerializeToString,
            response_deserializer=ownership_pb2.DatabaseOwnershipReport.FromString,
        )
        try:
            owned = await ownership(
                ownership_pb2.GetDatabaseOwnershipRequest(),
                timeout=CHECK_TIMEOUT_SECONDS,
                metadata=self._token.metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            report.problems.append(f"{backend.name} did not report its database ownership: {exc.code().name}")
            return report
        report.ownership = owned
        if owned.owner != backend.expected_owner:
            report.miswired.append(
                f"{backend.name} serves a database owned by {owned.owner or 'nobody'!r} "
                f"({owned.database_name}), not {backend.expected_owner!r}"
            )
        elif owned.expected_owner != backend.expected_owner:
            report.miswired.append(
                f"{backend.name} expects owner {owned.expected_owner!r} but must serve {backend.expected_owner!r}"
            )
        return report

    async def check(self) -> Verdict:
        reports = await asyncio.gather(*(self._check_backend(backend) for backend in self._backends))
        problems: list[str] = []
        miswired: list[str] = []
        by_fingerprint: dict[str, list[str]] = {}
        summary: dict[str, dict[str, str]] = {}
        for backend, report in zip(self._backends, reports, strict=True):
            problems.extend(report.problems)
            miswired.extend(report.miswired)
            owned = report.ownership
            summary[backend.name] = {"status": "ok" if not report.problems else "down"}
            if owned is not None:
                summary[backend.name].update(
                    owner=owned.owner,
                    database=owned.database_name,
                    backend=owned.backend,
                    fingerprint=owned.fingerprint,
                )
                by_fingerprint.setdefault(owned.fingerprint, []).append(backend.name)
        for fingerprint, names in by_fingerprint.items():
            if len(names) > 1:
                miswired.append(f"{' and '.join(names)} serve the same database (fingerprint {fingerprint})")
        message = "; ".join(miswired)
        verdict = Verdict(
            ready=not problems and not miswired,
            problems=tuple(miswired + problems),
            miswired=message,
            reports=summary,
        )
        if verdict.miswired and verdict.miswired != self.verdict.miswired:
            wired = ", ".join(f"{backend.name} at {backend.address}" for backend in self._backends)
            log.error("backends are mis-wired, refusing API traffic: %s (%s)", verdict.miswired, wired)
        elif not verdict.miswired and self.verdict.miswired:
            log.info("backends wired correctly again; serving API traffic")
        self.verdict = verdict
        return verdict

    async def run(self) -> None:
        """Re-check forever; cancelled at shutdown."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                # A check must never kill the loop: the last verdict stays and the next round tries again.
                log.exception("readiness check failed")
