"""item_service down mid-exam: answers, events and reloads keep working; advancing waits for it to return."""

from __future__ import annotations

from pathlib import Path

import grpc
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import service_process
from tests.session_service.conftest import session_process
from tests.support.exam import answer, as_user, expect_code, full_items, new_user, request_id
from tests.support.tokens import TEST_TOKEN_KEY


def test_exam_survives_an_item_service_restart(item_bank_path: Path, tmp_path: Path) -> None:
    items_env = {"DATABASE_URL": f"sqlite:///{item_bank_path}", "TOEFL_TOKEN_KEY": TEST_TOKEN_KEY}
    item_proc = service_process(
        "item_service", workdir=tmp_path / "items", env={**items_env, "ITEM_SERVICE_ADDR": "127.0.0.1:0"}
    ).start()
    # The restarted item_service comes back on the same address, as it does behind `make deploy`.
    item_proc.env["ITEM_SERVICE_ADDR"] = item_proc.address
    proc = session_process(
        tmp_path / "session", item_address=item_proc.address, env={"SESSION_ITEM_RETRY_SECONDS": "3"}
    ).start()
    try:
        with grpc.insecure_channel(proc.address) as channel, grpc.insecure_channel(item_proc.address) as items:
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            student = new_user(stub)
            md = as_user(student)
            session = stub.CreateSession(
                pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_LISTENING),
                metadata=md,
            )
            keyed = full_items(item_service_pb2_grpc.ItemServiceStub(items), session.current_module.items)

            item_proc.terminate()
            for item in keyed:
                reply = stub.SubmitResponse(
                    pb.SubmitResponseRequest(
                        session_id=session.session_id,
                        item_id=item.item_id,
                        answer=answer(item, correct=True),
                        request_id=request_id(),
                    ),
                    metadata=md,
                )
                assert reply.response.revision == 1
            logged = stub.LogEvents(
                pb.LogEventsRequest(
                    session_id=session.session_id, events=[pb.ClientEvent(type=pb.EVENT_TYPE_AUDIO_PLAYED)]
                ),
                metadata=md,
            )
            assert logged.stored == 1
            reloaded = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
            assert len(reloaded.current_module.responses) == len(keyed)
            assert list(reloaded.current_module.items) == list(session.current_module.items)

            advance = pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id())
            expect_code(
                grpc.StatusCode.UNAVAILABLE,
                lambda: stub.AdvanceModule(advance, metadata=md),
                "the item service is unavailable; your answers are saved",
            )
            still = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
            assert still.current_module.module_id == session.current_module.module_id
            assert still.current_module.status == pb.MODULE_STATUS_OPEN

            item_proc.start()
            advanced = stub.AdvanceModule(advance, metadata=md)
            assert advanced.current_module.sequence == 2
            assert advanced.current_module.stage == pb.MODULE_STAGE_UPPER
            assert advanced.modules[0].answered_count == len(keyed)
    finally:
        proc.kill()
        item_proc.kill()
