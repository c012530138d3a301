"""Session service test fixtures: the user database guard, a migrated database, service processes, clients."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from toefl.session.v1 import scoring_service_pb2_grpc, session_service_pb2_grpc

from launcher.procs import REPO_ROOT, ServiceProcess, session_service_process
from session_service.storage.engine import Database, open_database
from session_service.storage.schema import migrate
from tests.support.databases import backend_url
from tests.support.tokens import TEST_TOKEN_KEY

TEMP_ROOT = Path(tempfile.gettempdir()).resolve()


class UnsafeUserDatabase(RuntimeError):
    pass


def require_temporary_url(url: str) -> None:
    """Refuse any user database outside the temporary folder.

    Accepted: a SQLite file there, or a PostgreSQL server reached only through a unix socket there (a throwaway
    cluster from launcher/postgres.py); never a network host.
    """
    parts = urlsplit(url)
    if url.startswith("sqlite:///"):
        path = Path(url.split(":///", 1)[1]).resolve()
    elif parts.scheme.startswith("postgresql") and not parts.hostname:
        path = Path(parse_qs(parts.query).get("host", ["/"])[0]).resolve()
    else:
        raise UnsafeUserDatabase(f"refusing USER_DATABASE_URL={url!r}: tests use databases in a temporary folder")
    if TEMP_ROOT not in path.parents:
        raise UnsafeUserDatabase(f"refusing USER_DATABASE_URL={url!r}: {path} is outside {TEMP_ROOT}")
    # A checkout may itself live in the temporary folder (CI clones there): its data/ is still real data.
    if path == REPO_ROOT or REPO_ROOT in path.parents:
        raise UnsafeUserDatabase(f"refusing USER_DATABASE_URL={url!r}: {path} is inside the checkout")


@pytest.fixture(autouse=True)
def _user_database_guard() -> None:
    url = os.environ.get("USER_DATABASE_URL")
    if url:
        require_temporary_url(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated user database for the storage and writer tests: a SQLite file, then a throwaway PostgreSQL
    cluster's database (skipped, saying why, where none can be started)."""
    url = backend_url(request, tmp_path / "user_data.db")
    database = open_database(url, create=True)
    migrate(database)
    yield database
    database.dispose()


def session_process(
    workdir: Path, *, item_address: str, env: Mapping[str, str] | None = None, database_url: str | None = None
) -> ServiceProcess:
    """session_service on port 0 with its own user database (by default a SQLite file in `workdir`)."""
    url = database_url or f"sqlite:///{workdir / 'user_data.db'}"
    require_temporary_url(url)
    return session_service_process(
        workdir,
        item_address=item_address,
        token_key=TEST_TOKEN_KEY,
        database_url=url,
        env={"SESSION_ITEM_RETRY_SECONDS": "1.5", **(env or {})},
    )


@pytest.fixture(scope="module")
def session_proc(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    proc = session_process(tmp_path_factory.mktemp("session"), item_address=item_service_proc.address).start()
    yield proc
    proc.terminate()


@pytest.fixture(scope="module")
def session_stub(session_proc: ServiceProcess) -> Iterator[session_service_pb2_grpc.SessionServiceStub]:
    with grpc.insecure_channel(session_proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)


# The scoring test modules share a session_service per module, `proc`: by default every rated response is final
# after one rating (test_ratings covers the second); a module that needs another share or settings defines its own.
@pytest.fixture(scope="module")
def proc(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    started = session_process(
        tmp_path_factory.mktemp("scoring"),
        item_address=item_service_proc.address,
        env={"SESSION_SECOND_RATING_SHARE": "0"},
    ).start()
    yield started
    started.terminate()


# A channel and stubs on `proc`.
@pytest.fixture(scope="module")
def channel(proc: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(proc.address) as opened:
        yield opened


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> session_service_pb2_grpc.SessionServiceStub:
    return session_service_pb2_grpc.SessionServiceStub(channel)


@pytest.fixture(scope="module")
def scoring(channel: grpc.Channel) -> scoring_service_pb2_grpc.ScoringServiceStub:
    return scoring_service_pb2_grpc.ScoringServiceStub(channel)
