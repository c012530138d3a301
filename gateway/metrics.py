"""Prometheus metrics of the gateway: requests, latency and errors per route template, backend errors."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so that several gateways in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Time from request to response (streams: to the end of the stream).",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "gateway_http_errors_total",
            "HTTP responses with status >= 400, by route template and gRPC code.",
            ["route", "method", "code"],
            registry=self.registry,
        )
        self._backend_errors = Counter(
            "gateway_backend_errors_total",
            "gRPC calls to a backend that ended with a non-OK status.",
            ["backend", "code"],
            registry=self.registry,
        )
        # Children by label values: `.labels()` costs a lock and a tuple per call on the hot path otherwise.
        self._children: dict[tuple[str, ...], MetricWrapperBase] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> MetricWrapperBase:
        key = (str(id(metric)), *labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            self._children[key] = child
        return child

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self._requests, route, method, str(status)).inc()  # type: ignore[attr-defined]
        self._child(self._latency, route, method).observe(seconds)  # type: ignore[attr-defined]

    def observe_error(self, route: str, method: str, code: str) -> None:
        self._child(self._errors, route, method, code).inc()  # type: ignore[attr-defined]

    def observe_backend_error(self, backend: str, code: str) -> None:
        self._child(self._backend_errors, backend, code).inc()  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)
