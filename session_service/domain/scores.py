"""Scores as the domain knows them: what a section's score is computed from, its figures, score versions, when a
score is a new version, which sections are closed, and the plan of a rescore."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from session_service.domain.states import (
    FULL_TEST_SECTIONS,
    SCOPE_FULL_TEST,
    SCORE_FINAL,
    SCORE_PROVISIONAL,
    STAGE_ROUTER,
    STATUS_OPEN,
)


class ScoringItem(NamedTuple):
    """An item as the session pinned it: FULL view, serialized (a tuple: a batch rescore builds tens of
    thousands)."""

    item_id: str
    revision: int
    task_type: str
    full_item: bytes


class AnswerRow(NamedTuple):
    """The latest revision of the answer to an item (a tuple, for the same reason)."""

    response_id: int
    answer_json: str
    elapsed_ms: int
    saved_ms: int


@dataclass(frozen=True)
class SectionInputs:
    """Everything a section's score is computed from, read in the transaction that writes it."""

    section: str
    items: tuple[ScoringItem, ...]
    answers: Mapping[str, AnswerRow]
    # Response id -> final rubric score of the rated responses whose rating is final.
    final_ratings: Mapping[int, int]
    # Rescoring only: item id -> FULL item at its current revision in the bank (serialized).
    current_items: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SectionFigures:
    """A section's row in a score version; equal figures mean an equal score."""

    section: str
    status: str
    theta: float
    standard_error: float
    band: str
    cefr: str
    band_low: str
    band_high: str
    items_used: int
    items_awaiting_rating: int
    task_types_json: str
    parameters_json: str


def student_sees_band(*, items: int, answered: int) -> bool:
    """Whether a student's own report shows a section's band, range and CEFR: once they answered at least half the
    items the section showed them. A band of one or two answers (the others unanswered, so scoring 0) says whether
    those answers were right: repeated sessions would read the item keys off it."""
    return answered > 0 and 2 * answered >= items


@dataclass(frozen=True)
class TotalFigures:
    band: str
    cefr: str
    comparable_low: int
    comparable_high: int
    comparable_midpoint: int


@dataclass(frozen=True)
class NewRatingTask:
    response_id: int
    item_id: str
    task_type: str
    double_rated: bool
    submit_ms: int


class Scorer(Protocol):
    """The scoring rule, as session_service.scoring implements it (pure: no database, no network)."""

    @property
    def cut_table_version(self) -> str: ...

    def section(self, inputs: SectionInputs) -> SectionFigures: ...

    def total(self, sections: Sequence[SectionFigures]) -> TotalFigures | None: ...

    def rating_tasks(self, inputs: SectionInputs) -> list[NewRatingTask]: ...

    def new_score_id(self) -> str: ...


@dataclass(frozen=True)
class ScoreVersionRecord:
    score_id: str
    session_id: str
    version: int
    status: str
    reason: str
    blueprint_version: str
    cut_table_version: str
    total: TotalFigures | None
    sections: tuple[SectionFigures, ...]
    create_ms: int


@dataclass(frozen=True)
class RescoreOutcome:
    session_id: str
    changed: bool
    previous: ScoreVersionRecord | None
    current: ScoreVersionRecord


@dataclass(frozen=True)
class RatingOutcome:
    rating_id: str
    response_id: int
    state: str
    final_score: int | None
    rule: str


@dataclass(frozen=True)
class RatingTaskRecord:
    response_id: int
    task_type: str
    item_id: str
    state: str
    submit_ms: int
    full_item: bytes
    answer_json: str


@dataclass(frozen=True)
class RatingPair:
    response_id: int
    rater_id: str
    score: int


@dataclass(frozen=True)
class SessionExport:
    session_id: str
    finish_ms: int
    sections: tuple[SectionInputs, ...]


class ScoredSession(NamedTuple):
    """The columns of a session that its scoring reads (a plain row, not an ORM object)."""

    session_id: str
    scope: str
    state: str
    blueprint_version: str


class ModuleState(NamedTuple):
    """Where a module of a session stands, as far as closing its section goes."""

    section: str
    stage: str
    status: str


def closed_sections(modules: Iterable[ModuleState], *, finished: bool) -> set[str]:
    """Sections that will take no more answers: none of their modules open, and past the router (or the session
    finished, which closes every section it reached)."""
    open_sections: set[str] = set()
    past_router: set[str] = set()
    present: set[str] = set()
    for module in modules:
        present.add(module.section)
        if module.status == STATUS_OPEN:
            open_sections.add(module.section)
        if module.stage != STAGE_ROUTER:
            past_router.add(module.section)
    return {section for section in present - open_sections if finished or section in past_router}


def sections_to_score(closed: set[str], previous: ScoreVersionRecord | None) -> set[str]:
    """The closed sections without a score yet: a section is scored once when it closes, then only by a rating
    or a rescore."""
    scored = {f.section for f in previous.sections} if previous is not None else set()
    return closed - scored


def candidate_version(
    *,
    session: ScoredSession,
    previous: ScoreVersionRecord | None,
    recompute: Mapping[str, SectionInputs],
    scorer: Scorer,
    reason: str,
    now_ms: int,
) -> ScoreVersionRecord:
    merged = {f.section: f for f in (previous.sections if previous is not None else ())}
    for section, inputs in recompute.items():
        merged[section] = scorer.section(inputs)
    sections = tuple(merged[k] for k in sorted(merged))
    expected = FULL_TEST_SECTIONS if session.scope == SCOPE_FULL_TEST else 1
    final = len(sections) == expected and all(f.status == SCORE_FINAL for f in sections)
    return ScoreVersionRecord(
        score_id=scorer.new_score_id(),
        session_id=session.session_id,
        version=(previous.version if previous is not None else 0) + 1,
        status=SCORE_FINAL if final else SCORE_PROVISIONAL,
        reason=reason,
        blueprint_version=session.blueprint_version,
        cut_table_version=scorer.cut_table_version,
        total=scorer.total(sections) if final and session.scope == SCOPE_FULL_TEST else None,
        sections=sections,
        create_ms=now_ms,
    )


# Theta and its SE closer than this are the same score: a NumPy or CPU change may move their last bits, and a
# rescore must not then write a new version of every session.
FIGURE_TOLERANCE = 1e-9


def _same_section(a: SectionFigures, b: SectionFigures) -> bool:
    return (
        dataclasses.replace(a, theta=0.0, standard_error=0.0)
        == dataclasses.replace(b, theta=0.0, standard_error=0.0)
        and abs(a.theta - b.theta) <= FIGURE_TOLERANCE
        and abs(a.standard_error - b.standard_error) <= FIGURE_TOLERANCE
    )


def differs(previous: ScoreVersionRecord | None, candidate: ScoreVersionRecord) -> bool:
    if previous is None:
        return True
    if (previous.cut_table_version, previous.total, previous.status) != (
        candidate.cut_table_version,
        candidate.total,
        candidate.status,
    ) or len(previous.sections) != len(candidate.sections):
        return True
    return not all(_same_section(a, b) for a, b in zip(previous.sections, candidate.sections, strict=True))


@dataclass(frozen=True)
class RescorePlan:
    """A rescore computed from one snapshot, written only if the session's scores have not moved since."""

    result: bytes
    new_version: ScoreVersionRecord | None
    base_version: int


@dataclass(frozen=True)
class RescoreInputs:
    """What a session's rescore is computed from, read in one snapshot."""

    session: ScoredSession
    previous: ScoreVersionRecord | None
    sections: Mapping[str, SectionInputs]


def plan_rescore(
    inputs: RescoreInputs,
    *,
    current_items: Mapping[str, bytes],
    scorer: Scorer,
    encode: Callable[[RescoreOutcome], bytes],
    now_ms: int,
) -> RescorePlan:
    """Re-score every scored section with `current_items` (pure: no database; the costly part of a rescore,
    kept off the single writer); a new version only if a figure or revision changed. A dry run is just this."""
    previous = inputs.previous
    candidate = candidate_version(
        session=inputs.session,
        previous=previous,
        recompute={
            section: dataclasses.replace(pinned, current_items=current_items)
            for section, pinned in inputs.sections.items()
        },
        scorer=scorer,
        reason="rescore",
        now_ms=now_ms,
    )
    changed = differs(previous, candidate)
    outcome = RescoreOutcome(
        session_id=inputs.session.session_id,
        changed=changed,
        previous=previous,
        current=candidate if changed or previous is None else previous,
    )
    return RescorePlan(
        result=encode(outcome),
        new_version=candidate if changed else None,
        base_version=previous.version if previous is not None else 0,
    )
