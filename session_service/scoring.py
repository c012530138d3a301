"""Scoring of sessions: section figures from the pinned items, answers and final ratings; totals; rating tasks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from google.protobuf import json_format
from toefl.item.v1 import item_pb2
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb

from session_service import accounts
from session_service.domain.scores import (
    AnswerRow,
    NewRatingTask,
    ScoringItem,
    SectionFigures,
    SectionInputs,
    SessionExport,
    TotalFigures,
)
from session_service.domain.states import SCORE_FINAL, SCORE_PROVISIONAL
from session_service.routing import section_name
from toefl_core.rating import needs_second_rating
from toefl_core.scoring import (
    RATED_TASK_TYPES,
    ScoredItem,
    is_pretest,
    score_answer,
    score_section,
    total_score,
)
from toefl_core.scoring_rules import CutTable

RATED_TASK_NAMES = frozenset(item_pb2.TaskType.Name(t) for t in RATED_TASK_TYPES)
SCORED_MODELS = frozenset({item_pb2.IRT_MODEL_3PL, item_pb2.IRT_MODEL_GPCM})
# Prepared items kept by SessionScorer: well above a bank's items times the revisions in use.
MAX_PREPARED = 4096
MAX_PARSED_ANSWERS = 16_384
# Distinct answers remembered per prepared item (free-text answers could otherwise grow it without bound).
MAX_SCORES_PER_ITEM = 64


def _parsed_answer(answer_json: str) -> pb.Answer:
    # json_format.Parse is pure Python and was the largest cost of a rescore; the three objective shapes are
    # read directly, anything else goes through the full parser.
    raw = json.loads(answer_json)
    if isinstance(raw, dict) and len(raw) == 1:
        (key, value), *_ = raw.items()
        if key == "choiceIndex" and isinstance(value, int):
            return pb.Answer(choice_index=value)
        if key in ("completions", "wordSequence") and isinstance(value, dict) and set(value) <= {"values"}:
            values = pb.StringList(values=value.get("values", []))
            return pb.Answer(completions=values) if key == "completions" else pb.Answer(word_sequence=values)
    return json_format.ParseDict(raw, pb.Answer())


_ANSWERS: dict[str, pb.Answer] = {}


def answer_from_json(answer_json: str) -> pb.Answer:
    """A stored answer (canonical proto JSON) as a message, parsed once per distinct JSON.

    Shared between callers (most answers are one of a few choices), so never to be mutated: copy it into a
    message (as a constructor argument does) instead.
    """
    answer = _ANSWERS.get(answer_json)
    if answer is None:
        answer = _parsed_answer(answer_json)
        if len(_ANSWERS) >= MAX_PARSED_ANSWERS:
            _ANSWERS.clear()
        _ANSWERS[answer_json] = answer
    return answer


def parse_answer(row: AnswerRow | None) -> pb.Answer | None:
    """The stored answer of a row (shared, never to be mutated); None when the item was not answered."""
    return None if row is None else answer_from_json(row.answer_json)


def max_points_of(irt: item_pb2.IrtParameters) -> int:
    """The highest item score: the rubric or slot count of a GPCM item, 1 for a dichotomous one."""
    if irt.model == item_pb2.IRT_MODEL_GPCM:
        return irt.max_score or len(irt.steps)
    return 1


def max_points(item: item_pb2.Item) -> int:
    return max_points_of(item.irt)


def item_score(item: item_pb2.Item, answer: AnswerRow | None, final_ratings: Mapping[int, int]) -> int | None:
    """The score an item enters the estimate with; None for a rated response still waiting for its rating."""
    if item.task_type in RATED_TASK_TYPES:
        if answer is None:
            return 0
        return final_ratings.get(answer.response_id)
    score = score_answer(item, parse_answer(answer))
    assert score is not None
    return score


@dataclass(frozen=True)
class _Prepared:
    """A pinned item ready to score: parsed (answer key, task type) with the parameters it is scored with."""

    item: item_pb2.Item
    irt: item_pb2.IrtParameters
    revision: int
    max_points: int
    # Read off the messages once: a batch rescore asks them for every item of every session.
    rated: bool
    enters_estimate: bool
    # Pinned in a pretest slot: left out of the section's figures altogether (its response is still exported).
    pretest: bool
    # Score -> the item's parameters with that score, built once (a score takes few values).
    scored: dict[int, ScoredItem] = field(default_factory=dict)
    # Answer JSON (None: unanswered) -> objective score: most answers to an item are one of a few.
    objective_scores: dict[str | None, int | None] = field(default_factory=dict)

    def score(self, answer: AnswerRow | None, final_ratings: Mapping[int, int]) -> int | None:
        """item_score, remembered per distinct answer for the objective items."""
        if self.rated:
            return item_score(self.item, answer, final_ratings)
        key = answer.answer_json if answer is not None else None
        if key in self.objective_scores:
            return self.objective_scores[key]
        found = item_score(self.item, answer, final_ratings)
        if len(self.objective_scores) < MAX_SCORES_PER_ITEM:
            self.objective_scores[key] = found
        return found

    def scored_item(self, score: int) -> ScoredItem:
        found = self.scored.get(score)
        if found is None:
            found = self.scored.setdefault(score, ScoredItem.of(self.item, score, irt=self.irt))
        return found


class SessionScorer:
    """The scoring rule handed to storage (storage.scores.Scorer): pure, deterministic, no I/O.

    Provisional section scores: the EAP estimate uses the objective items and the rated responses whose rating
    is final; a rated response still waiting for its rating is left out (neither 0 nor a guess), so a provisional
    band may move either way as ratings arrive. An unanswered rated item scores 0, as any unanswered item does.
    The section turns FINAL (a new version) once every rated response in it has a final rating. Items pinned in
    a pretest slot are no part of the figures (nor of the counts a student's report is judged by); a rated pretest
    response is still rated, for calibration, without holding the section provisional.
    """

    def __init__(self, *, cut_table: CutTable, second_rating_share: float, second_rating_salt: str) -> None:
        self._cut_table = cut_table
        self._share = second_rating_share
        self._salt = second_rating_salt
        self._cache: dict[tuple[bytes, bytes | None, int], _Prepared] = {}

    @property
    def cut_table(self) -> CutTable:
        """The band cuts every score of this process uses, the router's estimate included."""
        return self._cut_table

    @property
    def cut_table_version(self) -> str:
        return self._cut_table.version

    def new_score_id(self) -> str:
        return accounts.new_id("scr")

    def _prepared(self, pinned: ScoringItem, current: bytes | None) -> _Prepared:
        """The pinned item parsed once per (pinned bytes, current bytes): rescoring a batch meets each a
        thousand times. Shared across threads and sessions, so never mutated (at worst parsed twice)."""
        key = (pinned.full_item, current, pinned.revision)
        prepared = self._cache.get(key)
        if prepared is None:
            item = item_pb2.Item.FromString(pinned.full_item)
            irt, revision = item.irt, pinned.revision
            if current is not None:
                # Rescoring: the answer is scored against the pinned key; the parameters are today's.
                latest = item_pb2.Item.FromString(current)
                irt, revision = latest.irt, latest.revision
            prepared = _Prepared(
                item=item,
                irt=irt,
                revision=revision,
                max_points=max_points_of(irt),
                rated=item.task_type in RATED_TASK_TYPES,
                enters_estimate=irt.model in SCORED_MODELS,
                pretest=is_pretest(item),
            )
            if len(self._cache) >= MAX_PREPARED:
                self._cache.clear()
            self._cache[key] = prepared
        return prepared

    def section(self, inputs: SectionInputs) -> SectionFigures:
        scored: list[ScoredItem] = []
        awaiting = 0
        parameters: dict[str, int] = {}
        summaries: dict[str, list[float]] = {}
        for pinned in inputs.items:
            prepared = self._prepared(pinned, inputs.current_items.get(pinned.item_id))
            if prepared.pretest:
                continue
            parameters[pinned.item_id] = prepared.revision
            answer = inputs.answers.get(pinned.item_id)
            score = prepared.score(answer, inputs.final_ratings)
            summary = summaries.setdefault(pinned.task_type, [0, 0, 0.0, 0.0])
            summary[0] += 1
            summary[1] += answer is not None
            summary[2] += score or 0
            summary[3] += prepared.max_points
            if score is None:
                awaiting += 1
            elif prepared.enters_estimate:
                scored.append(prepared.scored_item(score))
        result = score_section(
            scored, section=section_name(item_pb2.Section.Value(inputs.section)), cut_table=self._cut_table
        )
        task_types = [
            {"task_type": name, "items": int(n), "answered": int(a), "points": p, "max_points": m}
            for name, (n, a, p, m) in sorted(summaries.items())
        ]
        return SectionFigures(
            section=inputs.section,
            status=SCORE_PROVISIONAL if awaiting else SCORE_FINAL,
            theta=result.theta,
            standard_error=result.se,
            band=str(result.band),
            cefr=result.cefr,
            band_low=str(result.band_low),
            band_high=str(result.band_high),
            items_used=result.items_used,
            items_awaiting_rating=awaiting,
            task_types_json=json.dumps(task_types, sort_keys=True, separators=(",", ":")),
            parameters_json=json.dumps(parameters, sort_keys=True, separators=(",", ":")),
        )

    def total(self, sections: Sequence[SectionFigures]) -> TotalFigures | None:
        bands = {section_name(item_pb2.Section.Value(f.section)): Decimal(f.band) for f in sections}
        total = total_score(bands)
        return TotalFigures(
            band=str(total.band),
            cefr=total.cefr,
            comparable_low=total.comparable.low,
            comparable_high=total.comparable.high,
            comparable_midpoint=total.comparable.midpoint,
        )

    def rating_tasks(self, inputs: SectionInputs) -> list[NewRatingTask]:
        tasks = []
        for pinned in inputs.items:
            answer = inputs.answers.get(pinned.item_id)
            if pinned.task_type in RATED_TASK_NAMES and answer is not None:
                tasks.append(
                    NewRatingTask(
                        response_id=answer.response_id,
                        item_id=pinned.item_id,
                        task_type=pinned.task_type,
                        double_rated=needs_second_rating(str(answer.response_id), self._share, self._salt),
                        submit_ms=answer.saved_ms,
                    )
                )
        return tasks


def response_records(export: SessionExport) -> list[spb.ResponseRecord]:
    """Every pinned item of a finished session with its score: what item statistics are computed from."""
    records = []
    for inputs in export.sections:
        section = item_pb2.Section.Value(inputs.section)
        for pinned in inputs.items:
            item = item_pb2.Item.FromString(pinned.full_item)
            answer = inputs.answers.get(pinned.item_id)
            score = item_score(item, answer, inputs.final_ratings)
            records.append(
                spb.ResponseRecord(
                    session_id=export.session_id,
                    section=section,
                    item_id=pinned.item_id,
                    item_revision=pinned.revision,
                    score=-1 if score is None else score,
                    max_score=max_points(item),
                    answered=answer is not None,
                    elapsed_ms=answer.elapsed_ms if answer is not None else 0,
                    pretest=is_pretest(item),
                )
            )
    return records
