"""The database a storage test runs on, by the backend its fixture is parametrized with."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.postgres import PostgresCluster


def backend_url(request: pytest.FixtureRequest, sqlite_file: Path) -> str:
    """An empty database on the backend `request.param` names: "sqlite", a new file at `sqlite_file`; else the
    test module's throwaway PostgreSQL cluster (the `cluster` fixture, skipped where none can start), reset."""
    if request.param == "sqlite":
        return f"sqlite:///{sqlite_file}"
    cluster: PostgresCluster = request.getfixturevalue("cluster")
    cluster.reset_database()
    return cluster.url
