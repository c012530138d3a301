"""The same service on PostgreSQL (as at scale): a section taken, routed, exported and erased; shared tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.postgres import PostgresCluster
from launcher.procs import ServiceProcess
from tests.session_service import (
    test_access,
    test_durability,
    test_exam_flow,
    test_recordings,
    test_sign_in,
    test_sittings,
)
from tests.session_service.conftest import session_process
from tests.support.exam import admin, answer, as_user, full_items, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role


@pytest.fixture(scope="module")
def session_proc(
    cluster: PostgresCluster, item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """conftest's session_proc on PostgreSQL: the tests reused below run against the cluster."""
    proc = session_process(
        tmp_path_factory.mktemp("session"), item_address=item_service_proc.address, database_url=cluster.url
    ).start()
    yield proc
    proc.terminate()


@pytest.fixture(scope="module")
def fast_clock_session(
    cluster: PostgresCluster,
    session_proc: ServiceProcess,
    item_service_proc: ServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[session_service_pb2_grpc.SessionServiceStub]:
    """test_durability's fast clock (same settings) on the same database, after session_proc migrated it."""
    proc = session_process(
        tmp_path_factory.mktemp("fast-clock"),
        item_address=item_service_proc.address,
        env={"SESSION_TIME_SCALE": "0.002", "SESSION_SWEEP_SECONDS": "0.2"},
        database_url=cluster.url,
    ).start()
    with grpc.insecure_channel(proc.address) as channel:
        yield session_service_pb2_grpc.SessionServiceStub(channel)
    proc.terminate()


@pytest.fixture(scope="module")
def pair(
    cluster: PostgresCluster,
    session_proc: ServiceProcess,
    item_service_proc: ServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[session_service_pb2_grpc.SessionServiceStub, session_service_pb2_grpc.SessionServiceStub]]:
    """Two processes with short access tokens on one database: a refresh token issued by one is spent, reused
    and revoked at the other, and a failure counted by one holds at the other."""
    procs = [
        session_process(
            tmp_path_factory.mktemp(f"sign-in-{n}"),
            item_address=item_service_proc.address,
            env=test_sign_in.SHORT_ACCESS,
            database_url=cluster.url,
        ).start()
        for n in range(2)
    ]
    channels = [grpc.insecure_channel(proc.address) for proc in procs]
    try:
        first, second = (session_service_pb2_grpc.SessionServiceStub(channel) for channel in channels)
        yield first, second
    finally:
        for channel in channels:
            channel.close()
        for proc in procs:
            proc.terminate()


# Refresh tokens and throttling with two processes sharing the database.
test_refresh_and_reuse_on_two_processes = (
    test_sign_in.test_a_refresh_spends_its_token_and_a_reuse_ends_the_whole_sign_in
)
test_refresh_retry_on_two_processes = test_sign_in.test_a_retried_refresh_whose_reply_was_lost_gets_the_same_token
test_sitting_on_two_processes = test_sign_in.test_a_sitting_outlives_several_access_tokens_without_the_password
test_sign_out_on_two_processes = test_sign_in.test_sign_out_ends_the_sign_in_and_tells_nothing_of_unknown_tokens
test_revocation_on_two_processes = test_sign_in.test_an_admin_ends_every_sign_in_of_a_user
test_throttle_on_two_processes = test_sign_in.test_failures_counted_at_one_process_hold_at_the_other

# The SQLite tests, unchanged, on PostgreSQL: routing, idempotent retries, late answers, export and erasure.
test_routing_on_postgresql = test_exam_flow.test_whole_test_routes_by_ability
test_retries_on_postgresql = test_durability.test_retries_with_the_same_request_id_write_once
test_advance_retry_on_postgresql = (
    test_durability.test_advance_retry_does_not_advance_twice_and_closed_modules_refuse_answers
)
test_late_answers_on_postgresql = test_durability.test_late_answers_are_refused_and_saved_ones_kept
test_sweep_on_postgresql = test_durability.test_the_sweep_closes_expired_modules_nobody_touches
test_idempotent_create_and_paging_on_postgresql = test_access.test_create_session_is_idempotent_and_lists_paginate
test_export_and_erase_on_postgresql = test_access.test_export_and_erase_of_one_student_leave_the_others_untouched


def test_a_section_on_postgresql(
    cluster: PostgresCluster,
    item_service_proc: ServiceProcess,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    tmp_path: Path,
) -> None:
    proc = session_process(tmp_path, item_address=item_service_proc.address, database_url=cluster.url).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            report = ownership_pb2_grpc.DatabaseOwnershipStub(channel).GetDatabaseOwnership(
                ownership_pb2.GetDatabaseOwnershipRequest(), metadata=metadata(Role.SERVICE)
            )
            assert (report.backend, report.owner, report.schema_revision) == ("postgresql", "user_data", "0010")
            student = new_user(stub)
            md = as_user(student)
            session = stub.CreateSession(
                pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING),
                metadata=md,
            )
            for item in full_items(item_stub, session.current_module.items):
                request = pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=answer(item, correct=True),
                    request_id=request_id(),
                )
                assert not stub.SubmitResponse(request, metadata=md).replayed
                assert stub.SubmitResponse(request, metadata=md).replayed
            advanced = stub.AdvanceModule(pb.AdvanceModuleRequest(session_id=session.session_id), metadata=md)
            assert advanced.current_module.stage == pb.MODULE_STAGE_UPPER
            document = json.loads(
                stub.ExportStudentData(
                    pb.ExportStudentDataRequest(student_id=student.user_id), metadata=admin()
                ).json_document
            )
            assert len(document["sessions"][0]["responses"]) == len(session.current_module.items)
            erased = stub.EraseStudentData(
                pb.EraseStudentDataRequest(student_id=student.user_id), metadata=admin()
            )
            assert erased.responses_erased == len(session.current_module.items)
    finally:
        proc.kill()


def test_recordings_on_two_processes(pair: tuple[session_service_pb2_grpc.SessionServiceStub, ...]) -> None:
    # Uploaded at one process, replayed, heard, answered, exported and erased at the other.
    test_recordings.upload_hear_export_erase(pair[0], pair[1])


def test_a_pause_at_one_process_refuses_answers_at_the_other(
    pair: tuple[session_service_pb2_grpc.SessionServiceStub, ...], item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    test_sittings.pause_at_one_answer_at_the_other(pair[0], pair[1], item_stub)
