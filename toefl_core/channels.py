"""gRPC channel options shared by every client of our services: a restarted backend is found again at once."""

from __future__ import annotations

RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    # A restarted backend is found again within a fraction of a second, not after gRPC's default backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # `make deploy` recreates item_service's container at a new address under the same name: after a failed
    # connection the name is looked up again within a second, not after gRPC's default 30 s (during which every
    # call that needs it answered 503).
    ("grpc.dns_min_time_between_resolutions_ms", 1000),
)
