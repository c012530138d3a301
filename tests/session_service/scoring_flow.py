"""Helpers of the scoring tests: sessions taken to the end, and scores computed independently of the service."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.support.exam import Stub, answer, as_user, full_items, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role
from toefl_core.irt import PolytomousResponse, eap
from toefl_core.scoring_rules import load_cut_table, theta_to_band

RATED = frozenset(
    {
        item_pb2.TASK_TYPE_WRITE_AN_EMAIL,
        item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION,
        item_pb2.TASK_TYPE_LISTEN_AND_REPEAT,
        item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW,
    }
)
SECTION_NAMES = {
    item_pb2.SECTION_READING: "reading",
    item_pb2.SECTION_LISTENING: "listening",
    item_pb2.SECTION_WRITING: "writing",
    item_pb2.SECTION_SPEAKING: "speaking",
}
ScoringStub = scoring_service_pb2_grpc.ScoringServiceStub


@dataclass
class TakenSession:
    session_id: str
    student: pb.User
    # Per section: the FULL items the student saw, and whether each objective answer was right.
    items: dict[item_pb2.Section.ValueType, list[item_pb2.Item]] = field(default_factory=dict)
    correct: dict[str, bool] = field(default_factory=dict)


def start_session_service(
    tmp_path_factory: pytest.TempPathFactory,
    item_proc: ServiceProcess,
    *,
    second_rating_share: str,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    workdir: Path = tmp_path_factory.mktemp("scoring")
    return session_process(
        workdir,
        item_address=item_proc.address,
        env={"SESSION_SECOND_RATING_SHARE": second_rating_share, **(env or {})},
    ).start()


def take_session(
    stub: Stub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    student: pb.User,
    *,
    section: item_pb2.Section.ValueType = item_pb2.SECTION_UNSPECIFIED,
    skip: int = 0,
    seed: int = 7,
    until: item_pb2.Section.ValueType = item_pb2.SECTION_UNSPECIFIED,
) -> TakenSession:
    """Answer every module (right or wrong at random, `skip` items left unanswered per module), then finish; or
    stop, unfinished, at the first module of section `until`."""
    rng = random.Random(seed)
    md = as_user(student)
    scope = pb.SESSION_SCOPE_SECTION if section else pb.SESSION_SCOPE_FULL_TEST
    session = stub.CreateSession(
        pb.CreateSessionRequest(scope=scope, section=section, request_id=request_id()), metadata=md
    )
    taken = TakenSession(session_id=session.session_id, student=student)
    while session.HasField("current_module"):
        module = session.current_module
        if module.section == until:
            return taken
        items = full_items(item_stub, module.items)
        taken.items.setdefault(module.section, []).extend(items)
        for item in items[skip:]:
            right = rng.random() < 0.6
            taken.correct[item.item_id] = right
            given = answer(item, correct=right)
            if given.HasField("text"):
                # Marked with the student, so that a test can find this student's own rating task among the
                # blind tasks of every student sharing the database.
                given.text = f"{given.text} ({student.user_id})"
            stub.SubmitResponse(
                pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=given,
                    request_id=request_id(),
                ),
                metadata=md,
            )
        session = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()), metadata=md
        )
    stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    return taken


def expected_section(
    taken: TakenSession, section: item_pb2.Section.ValueType, ratings: Mapping[str, int] | None = None
) -> tuple[float, float, str]:
    """(theta, se, band) computed here from the FULL items: EAP of toefl_core.irt, the shipped cut table.

    Right answers take every point, wrong and missing ones none; rated items enter with `ratings` (by item id),
    are left out while unrated, and score 0 when unanswered. Pretest items enter no score.
    """
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    u: list[int] = []
    polytomous: list[PolytomousResponse] = []
    for item in taken.items[section]:
        if item.status == item_pb2.ITEM_STATUS_PRETEST:
            continue
        answered = item.item_id in taken.correct
        if item.task_type in RATED:
            if answered and (ratings is None or item.item_id not in ratings):
                continue
            score = ratings[item.item_id] if answered and ratings is not None else 0
            polytomous.append(PolytomousResponse(a=item.irt.a, steps=tuple(item.irt.steps), score=score))
        elif item.irt.model == item_pb2.IRT_MODEL_GPCM:
            right = answered and taken.correct[item.item_id]
            score = min(len(item.answer_key.completions), len(item.irt.steps)) if right else 0
            polytomous.append(PolytomousResponse(a=item.irt.a, steps=tuple(item.irt.steps), score=score))
        else:
            a.append(item.irt.a)
            b.append(item.irt.b)
            c.append(item.irt.c)
            u.append(int(answered and taken.correct[item.item_id]))
    ability = eap(a=a, b=b, c=c, u=u, polytomous=polytomous)
    band = theta_to_band(ability.theta, SECTION_NAMES[section], load_cut_table())
    return ability.theta, ability.se, str(band)


def section_of(version: spb.ScoreVersion, section: int) -> spb.SectionScore:
    return next(s for s in version.sections if s.section == section)


def rater() -> tuple[tuple[str, str], ...]:
    return metadata(Role.RATER, f"usr-rater-{uuid.uuid4().hex[:8]}")


def service() -> tuple[tuple[str, str], ...]:
    return metadata(Role.SERVICE, "scoring-tests")


def report(scoring: ScoringStub, session_id: str, md: tuple[tuple[str, str], ...]) -> spb.ScoreReport:
    return scoring.GetScoreReport(spb.GetScoreReportRequest(session_id=session_id), metadata=md)


def tasks_of(
    scoring: ScoringStub,
    md: tuple[tuple[str, str], ...],
    task_type: item_pb2.TaskType.ValueType = item_pb2.TASK_TYPE_UNSPECIFIED,
) -> list[spb.RatingTask]:
    found: list[spb.RatingTask] = []
    token = ""
    while True:
        page = scoring.ListRatingTasks(
            spb.ListRatingTasksRequest(task_type=task_type, page_size=50, page_token=token), metadata=md
        )
        found.extend(page.tasks)
        token = page.next_page_token
        if not token:
            return found
