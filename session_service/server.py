"""Wiring of the session service: open user_data.db at the schema it needs, then serve gRPC until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import grpc
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc
from toefl.session.v1 import (
    scoring_service_pb2,
    scoring_service_pb2_grpc,
    session_service_pb2,
    session_service_pb2_grpc,
)

from session_service import accounts, group_writer
from session_service.access import AccessPolicy
from session_service.caches import SessionHeads
from session_service.config import DEMO_CREDENTIALS_FILE, SECOND_RATING_SALT, Settings
from session_service.decoder import AudioDecoder
from session_service.heartbeat import Heartbeat
from session_service.item_client import ItemClient, ModuleCache
from session_service.scoring import SessionScorer
from session_service.scoring_servicer import ScoringServicer
from session_service.section_scoring import PendingScores
from session_service.servicer import SessionServicer
from session_service.sign_in import prune_forever
from session_service.storage import accounts as accounts_store
from session_service.storage.engine import (
    SCHEMA_HEAD,
    Database,
    SchemaError,
    open_database,
    owner_mark,
    schema_revision,
)
from session_service.workers import Workers
from toefl_core import paging
from toefl_core.config import ConfigError
from toefl_core.ownership import USER_DATA_OWNER
from toefl_core.ownership_servicer import OwnershipServicer
from toefl_core.scoring_rules import load_cut_table
from toefl_core.server import serve_forever

log = logging.getLogger(__name__)
SERVICE_NAMES = (
    session_service_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name,
    scoring_service_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,
    ownership_pb2.DESCRIPTOR.services_by_name["DatabaseOwnership"].full_name,
)


def open_at_head(settings: Settings) -> Database:
    """Open user_data.db for serving (creating and marking a brand-new file) at the schema this code needs.

    A database behind it is upgraded first by `python -m session_service migrate`, run as a child process: Alembic
    stays out of the serving process, which keeps its memory for the students (see storage.engine.SCHEMA_HEAD).
    Raises SchemaError when the database is still not at that revision afterwards.
    """
    db = open_database(settings.database_url, create=True)
    try:
        revision = schema_revision(db)
        if revision != SCHEMA_HEAD:
            log.info("user database at schema revision %r: upgrading it to %s", revision or None, SCHEMA_HEAD)
            migrate_command = [sys.executable, "-m", "session_service", "migrate"]
            exit_code = subprocess.run(migrate_command, check=False).returncode
            revision = schema_revision(db)
            if revision != SCHEMA_HEAD:
                raise SchemaError(
                    f"the user database is at schema revision {revision or None!r}, not {SCHEMA_HEAD}: "
                    f"`python -m session_service migrate` exited with {exit_code} (its log is above)"
                )
    except BaseException:
        db.dispose()
        raise
    log.info("user database at schema revision %s", revision)
    return db


def create_demo_accounts(settings: Settings, db: Database, passwords: accounts.Passwords) -> Path:
    if not settings.common.is_development:
        raise ConfigError("demo accounts are created in development only (TOEFL_ENV=development)")
    path = settings.data_dir / DEMO_CREDENTIALS_FILE
    accounts.create_demo_accounts(db, path, passwords)
    log.info("demo accounts ready; credentials in %s", path)
    return path


# The database writer thread runs short stretches of Python between SQLite calls that release the GIL; with the
# default 5 ms switch interval it waits up to that long for the GIL at each one while the event loop is busy, and
# the single writer is what every answer, advance and finish queues behind.
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


async def serve(settings: Settings, *, port_file: Path | None, demo_accounts: bool) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    db = await asyncio.to_thread(open_at_head, settings)
    passwords = accounts.Passwords(settings.password_parameters)
    if demo_accounts:
        await asyncio.to_thread(create_demo_accounts, settings, db, passwords)
    items = ItemClient(
        address=settings.item_service_addr,
        token_key=settings.common.token_key,
        retry_seconds=settings.item_retry_seconds,
    )
    workers = Workers(db)
    hashing = accounts.HashingPool(
        passwords, workers=settings.hash_workers, max_wait_seconds=settings.sign_in_max_wait_seconds
    )
    log.info(
        "password hashing: argon2id %s on %d thread(s), %.0f ms per verification",
        passwords.parameters,
        settings.hash_workers,
        passwords.first_cost_seconds * 1000,
    )
    heartbeat = Heartbeat(
        workers, interval_seconds=settings.heartbeat_seconds, grace_seconds=settings.outage_grace_seconds
    )
    # Before the first call: an answer retried after an outage must find its module's time given back.
    await heartbeat.recover()
    # The provisional cut table shipped with toefl_core; a re-set table is picked up by a restart and a rescore.
    scorer = SessionScorer(
        cut_table=load_cut_table(),
        second_rating_share=settings.second_rating_share,
        second_rating_salt=SECOND_RATING_SALT,
    )

    async def teaches(teacher_id: str, student_id: str) -> bool:
        return await workers.lookup(accounts_store.teaches, teacher_id=teacher_id, student_id=student_id)

    access = AccessPolicy(token_key=settings.common.token_key, teaches=teaches)
    # Page tokens signed with a key of their own derived from the token key: a client cannot forge a position.
    pages = paging.PageTokens(settings.common.token_key)
    answers_writer = group_writer.answer_writer(workers, scorer)
    pending_scores = PendingScores(workers, scorer)
    advances_writer = group_writer.advance_writer(workers)
    decoder = AudioDecoder()
    servicer = SessionServicer(
        settings=settings,
        items=items,
        cache=ModuleCache(),
        hashing=hashing,
        workers=workers,
        scorer=scorer,
        access=access,
        answer_writer=answers_writer,
        advance_writer=advances_writer,
        heads=SessionHeads(),
        pages=pages,
        pending_scores=pending_scores,
        decoder=decoder,
    )
    scoring = ScoringServicer(
        access=access, pages=pages, workers=workers, items=items, scorer=scorer, pending=pending_scores
    )
    ownership = OwnershipServicer(
        service="session_service",
        expected_owner=USER_DATA_OWNER,
        database_url=db.url,
        token_key=settings.common.token_key,
        inspect=lambda: (owner_mark(db), schema_revision(db)),
    )

    def register(server: grpc.aio.Server) -> None:
        session_service_pb2_grpc.add_SessionServiceServicer_to_server(servicer, server)
        scoring_service_pb2_grpc.add_ScoringServiceServicer_to_server(scoring, server)
        ownership_pb2_grpc.add_DatabaseOwnershipServicer_to_server(ownership, server)

    async def shutdown() -> None:
        await items.close()
        hashing.close()
        decoder.close()
        workers.close()
        db.dispose()

    await serve_forever(
        name="session_service",
        address=settings.address,
        register=register,
        service_names=SERVICE_NAMES,
        on_shutdown=shutdown,
        port_file=port_file,
        # Beside the server: the first connection to item_service, the answer and advance writers, the deadline
        # sweep, the second stages' preparer, the closed sections' scores, the heartbeat and the sign-in rows'
        # pruning.
        background=(
            items.connect,
            answers_writer.run_forever,
            advances_writer.run_forever,
            servicer.sweep_forever,
            servicer.prepare_forever,
            pending_scores.run_forever,
            heartbeat.beat_forever,
            lambda: prune_forever(workers),
        ),
    )
