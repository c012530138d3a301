"""A database server's host name is resolved once per process, and again only after its address stops answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from launcher.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.images.podman import free_loopback_port
from toefl_core import storage


@pytest.fixture(scope="module")
def tcp_cluster() -> Iterator[PostgresCluster]:
    try:
        started = start_cluster(tcp_port=free_loopback_port())
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available here: {exc}")
    yield started
    started.stop()


def test_pool_connections_resolve_the_host_once(
    tcp_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    monkeypatch.setattr(storage, "_resolved", {})
    engine = storage.create_server_engine(tcp_cluster.tcp_url, pool_size=1, max_overflow=4)
    try:
        # Four connections open at once: the pool opens each, as a burst of calls does.
        held = [engine.connect() for _ in range(4)]
        assert [c.execute(text("SELECT 1")).scalar() for c in held] == [1, 1, 1, 1]
        for connection in held:
            connection.close()
        assert looked_up.count("localhost") == 1

        # The server "moved": the remembered address no longer answers. That connection fails, and the next one
        # resolves the name afresh and reaches the server.
        storage._resolved[("localhost", str(tcp_cluster.tcp_port))] = "127.0.0.2"
        engine.dispose()
        with pytest.raises(Exception, match=r"127\.0\.0\.2"):
            engine.connect()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        assert looked_up.count("localhost") == 2
    finally:
        engine.dispose()


def test_a_socket_path_is_never_resolved(tcp_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a unix socket path was looked up in DNS")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    engine = storage.create_server_engine(tcp_cluster.url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
