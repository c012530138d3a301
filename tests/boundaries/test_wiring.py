"""Wiring refused with real processes: both database URLs on one database, a gateway before a mis-wired pair."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.gateway import GatewayProcess
from launcher.procs import ServiceProcess, clean_env, item_service_process
from tests.security.startup import assert_refused, start_expecting_refusal
from tests.session_service.conftest import require_temporary_url, session_process
from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import Role

SHARED = "name the same database"


def same_file_other_spelling(path: Path) -> str:
    """A second URL for the same file, so that only a comparison of resolved paths can tell."""
    return f"sqlite:///{path.parent}/./{path.name}"


def test_item_service_refuses_both_urls_on_one_database(item_bank_path: Path) -> None:
    env = clean_env(
        TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
        DATABASE_URL=f"sqlite:///{item_bank_path}",
        USER_DATABASE_URL=same_file_other_spelling(item_bank_path),
        ITEM_SERVICE_ADDR="127.0.0.1:0",
    )
    assert_refused(start_expecting_refusal("item_service", workdir=item_bank_path.parent, env=env), SHARED)


def test_session_service_refuses_both_urls_on_one_database(tmp_path: Path) -> None:
    database = tmp_path / "user_data.db"
    url = f"sqlite:///{database}"
    require_temporary_url(url)
    env = clean_env(
        TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
        USER_DATABASE_URL=url,
        DATABASE_URL=same_file_other_spelling(database),
        SESSION_SERVICE_ADDR="127.0.0.1:0",
        ITEM_SERVICE_ADDR="127.0.0.1:1",
    )
    assert_refused(start_expecting_refusal("session_service", workdir=tmp_path, env=env), SHARED)
    assert not database.exists()


@dataclass(frozen=True)
class Pair:
    item: ServiceProcess
    session: ServiceProcess


@pytest.fixture(scope="module")
def pair(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both services, each with the other's (different) database URL in its environment too: that is allowed."""
    workdir = tmp_path_factory.mktemp("wiring")
    bank = workdir / "item_bank.db"
    shutil.copyfile(demo_bank_template, bank)
    user_url = f"sqlite:///{workdir / 'user_data.db'}"
    item = item_service_process(
        workdir / "item", bank=bank, token_key=TEST_TOKEN_KEY, env={"USER_DATABASE_URL": user_url}
    ).start()
    try:
        session = session_process(
            workdir / "session",
            item_address=item.address,
            database_url=user_url,
            env={"DATABASE_URL": f"sqlite:///{bank}"},
        ).start()
        try:
            yield Pair(item=item, session=session)
        finally:
            session.terminate()
    finally:
        item.terminate()


@pytest.fixture
def gateway() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for proc in started:
        proc.terminate()


def start_gateway(started: list[GatewayProcess], workdir: Path, *, item: str, session: str) -> GatewayProcess:
    proc = GatewayProcess(workdir=workdir, item_address=item, session_address=session, token_key=TEST_TOKEN_KEY)
    started.append(proc)
    return proc.start()


def test_a_pair_wired_right_is_ready(pair: Pair, gateway: list[GatewayProcess], tmp_path: Path) -> None:
    proc = start_gateway(gateway, tmp_path, item=pair.item.address, session=pair.session.address)
    status, body = proc.request("GET", "/readyz")
    assert status == 200, body
    backends = body["backends"]
    assert (backends["item_service"]["owner"], backends["session_service"]["owner"]) == ("item_bank", "user_data")
    assert backends["item_service"]["fingerprint"] != backends["session_service"]["fingerprint"]
    # A teacher: students do not read the bank directly.
    assert proc.request("GET", "/api/items?pageSize=1", token=token(Role.TEACHER))[0] == 200


@pytest.mark.parametrize(
    ("wiring", "needles"),
    [
        (
            "swapped",
            (
                "item_service does not serve toefl.item.v1.ItemService",
                "item_service serves a database owned by 'user_data'",
                "session_service does not serve toefl.session.v1.SessionService",
                "session_service serves a database owned by 'item_bank'",
            ),
        ),
        (
            "both at item_service",
            (
                "session_service serves a database owned by 'item_bank'",
                "item_service and session_service serve the same database",
            ),
        ),
    ],
)
def test_a_miswired_pair_is_refused(
    pair: Pair, gateway: list[GatewayProcess], tmp_path: Path, wiring: str, needles: tuple[str, ...]
) -> None:
    item, session = pair.item.address, pair.session.address
    addresses = (session, item) if wiring == "swapped" else (item, item)
    proc = start_gateway(gateway, tmp_path, item=addresses[0], session=addresses[1])
    expected = [needle.format(item=item, session=session) for needle in needles]
    status, body = proc.request("GET", "/readyz")
    assert status == 503, body
    for needle in expected:
        assert needle in body["message"], body
    # The port is public: the backends' addresses stay in the gateway's log.
    assert item not in str(body) and session not in str(body)
    student = token(Role.STUDENT)
    for method, path, call_token in (
        ("GET", "/api/items?pageSize=1", student),
        ("GET", "/api/sessions", student),
        ("POST", "/api/auth/token", None),
    ):
        status, body = proc.request(method, path, token=call_token, body={} if method == "POST" else None)
        assert status == 503, (path, body)
        assert "mis-wired" in body["message"] and expected[0] in body["message"], body
    assert "refusing API traffic" in proc.log_text()
