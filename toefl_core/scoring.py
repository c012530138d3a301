"""Scoring of answers and sections: objective item scores, EAP section abilities, section bands and the total."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2

from toefl_core.irt import PolytomousResponse, dichotomous_log_likelihoods, polytomous_log_likelihood, posterior
from toefl_core.scoring_rules import (
    BANDS,
    SECTIONS,
    ComparableScore,
    CutTable,
    cefr_level,
    comparable_total,
    theta_to_band,
    total_band,
)

T = item_pb2
# Scored by raters on the 0-5 rubric; their item score comes from the rating workflow, not from the answer.
RATED_TASK_TYPES: frozenset[item_pb2.TaskType.ValueType] = frozenset(
    {
        T.TASK_TYPE_WRITE_AN_EMAIL,
        T.TASK_TYPE_ACADEMIC_DISCUSSION,
        T.TASK_TYPE_LISTEN_AND_REPEAT,
        T.TASK_TYPE_TAKE_AN_INTERVIEW,
    }
)
MULTIPLE_CHOICE_TASK_TYPES: frozenset[item_pb2.TaskType.ValueType] = frozenset(
    {
        T.TASK_TYPE_READ_IN_DAILY_LIFE,
        T.TASK_TYPE_READ_ACADEMIC_PASSAGE,
        T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE,
        T.TASK_TYPE_LISTEN_TO_CONVERSATION,
        T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT,
        T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK,
    }
)


def is_pretest(item: item_pb2.Item) -> bool:
    """Whether the item filled a pretest slot when it was pinned: it enters no score and no routing, whatever
    becomes of it later (its responses only feed calibration)."""
    return item.status == T.ITEM_STATUS_PRETEST


# cefr_level checks its band in exact arithmetic; a section scores one of these eleven bands.
_CEFR_OF_BAND = {band: cefr_level(band) for band in BANDS}


def _normalised(text: str) -> str:
    return text.strip().casefold()


def score_answer(item: item_pb2.Item, answer: session_service_pb2.Answer | None) -> int | None:
    """The objective score of an answer to a FULL-view item; None for rated task types (they wait for ratings).

    Multiple choice: 1 if the chosen option is the key, else 0. Build a Sentence: 1 if the word sequence equals the
    key exactly, else 0. Complete the Words: the number of slots whose completion matches the key, ignoring case
    and surrounding whitespace (0..number of slots; the item is one GPCM testlet). No answer, or an answer of the
    wrong shape, scores 0.
    """
    task_type = item.task_type
    if task_type in RATED_TASK_TYPES:
        return None
    kind = answer.WhichOneof("value") if answer is not None else None
    key = item.answer_key
    if task_type == T.TASK_TYPE_COMPLETE_THE_WORDS:
        if answer is None or kind != "completions":
            return 0
        given = answer.completions.values
        return sum(
            1
            for slot, expected in enumerate(key.completions)
            if slot < len(given) and _normalised(given[slot]) == _normalised(expected)
        )
    if task_type == T.TASK_TYPE_BUILD_A_SENTENCE:
        if answer is None or kind != "word_sequence":
            return 0
        return int(
            len(key.correct_sequence) > 0 and list(answer.word_sequence.values) == list(key.correct_sequence)
        )
    if task_type in MULTIPLE_CHOICE_TASK_TYPES:
        if answer is None or kind != "choice_index":
            return 0
        return int(answer.choice_index == key.correct_option)
    raise ValueError(f"item {item.item_id!r} has no scoring rule: task type {task_type} is unknown or unset")


# Log-likelihood rows kept (61 floats each): well above a bank's items times their scores, a few MB at most.
MAX_ROWS = 8192
_ROWS: dict[tuple[int, float, float, float, tuple[float, ...], int], NDArray[np.float64]] = {}


@dataclass(frozen=True)
class ScoredItem:
    """An item's IRT parameters (FULL view) with the integer score of the response to it."""

    item_id: str
    model: item_pb2.IrtModel.ValueType
    a: float
    b: float
    c: float
    steps: tuple[float, ...]
    score: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(float(step) for step in self.steps))
        if self.model == T.IRT_MODEL_3PL:
            if self.score not in (0, 1):
                raise ValueError(f"item {self.item_id}: a 3PL score must be 0 or 1, got {self.score}")
        elif self.model == T.IRT_MODEL_GPCM:
            if not 0 <= self.score <= len(self.steps):
                raise ValueError(
                    f"item {self.item_id}: a GPCM score must lie in 0..{len(self.steps)}, got {self.score}"
                )
        else:
            raise ValueError(f"item {self.item_id}: no IRT model, so it cannot enter an ability estimate")

    @functools.cached_property
    def log_likelihood(self) -> NDArray[np.float64]:
        """log P(score | theta) on the shared grid, computed once per (parameters, score) however many estimates
        use it: the same items recur across students, routers and rescored sessions. Read-only, as it is shared
        (and kept on this object too, which callers reuse for every estimate with this item and score)."""
        key = (self.model, self.a, self.b, self.c, self.steps, self.score)
        row = _ROWS.get(key)
        if row is None:
            if self.model == T.IRT_MODEL_3PL:
                row = dichotomous_log_likelihoods([self.a], [self.b], [self.c], [self.score])[0]
            else:
                row = polytomous_log_likelihood(PolytomousResponse(a=self.a, steps=self.steps, score=self.score))
            row.flags.writeable = False
            if len(_ROWS) >= MAX_ROWS:
                _ROWS.clear()
            _ROWS[key] = row
        return row

    @classmethod
    def of(cls, item: item_pb2.Item, score: int, *, irt: item_pb2.IrtParameters | None = None) -> ScoredItem:
        """The item's parameters (or `irt`, e.g. today's after a recalibration) with a score; a GPCM score above
        the item's steps is capped at the top step."""
        irt = item.irt if irt is None else irt
        steps = tuple(irt.steps)
        if irt.model == T.IRT_MODEL_GPCM:
            # A testlet keyed with more slots than calibrated steps: extra slots cannot raise the category.
            score = min(score, len(steps))
        return cls(item_id=item.item_id, model=irt.model, a=irt.a, b=irt.b, c=irt.c, steps=steps, score=score)


@dataclass(frozen=True)
class SectionScore:
    """A section's ability estimate, its band under a cut table, and the bands of theta - se and theta + se."""

    section: str
    theta: float
    se: float
    band: Decimal
    cefr: str
    band_low: Decimal
    band_high: Decimal
    items_used: int
    cut_table_version: str


def score_section(responses: Sequence[ScoredItem], *, section: str, cut_table: CutTable) -> SectionScore:
    """EAP ability (3PL items right/wrong, GPCM items by category) over every item the student saw in a section.

    Unanswered items count: the caller passes them with score 0 (score_answer(item, None) gives 0), so skipping an
    item never helps. A rated item enters with the rating's final score once it is known.
    """
    dichotomous = [r.log_likelihood for r in responses if r.model == T.IRT_MODEL_3PL]
    ability = posterior(
        dichotomous=np.array(dichotomous) if dichotomous else None,
        polytomous=[r.log_likelihood for r in responses if r.model == T.IRT_MODEL_GPCM],
    )
    band = theta_to_band(ability.theta, section, cut_table)
    return SectionScore(
        section=section,
        theta=ability.theta,
        se=ability.se,
        band=band,
        cefr=_CEFR_OF_BAND[band],
        band_low=theta_to_band(ability.theta - ability.se, section, cut_table),
        band_high=theta_to_band(ability.theta + ability.se, section, cut_table),
        items_used=len(responses),
        cut_table_version=cut_table.version,
    )


@dataclass(frozen=True)
class TotalScore:
    """The total band (mean of the four section bands, half bands, ties upward), its CEFR level and 0-120 score."""

    band: Decimal
    cefr: str
    comparable: ComparableScore


def total_score(section_bands: Mapping[str, Decimal]) -> TotalScore:
    """The total of the four section bands, keyed by section name (reading, listening, writing, speaking)."""
    if set(section_bands) != set(SECTIONS):
        raise ValueError(f"a total needs the bands of exactly {', '.join(SECTIONS)}; got {sorted(section_bands)}")
    band = total_band([section_bands[section] for section in SECTIONS])
    return TotalScore(band=band, cefr=cefr_level(band), comparable=comparable_total(band))
