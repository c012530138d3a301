"""The validation's realistic conditions: calibration error, simulated raters, a testlet effect within passages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from toefl.item.v1 import item_pb2

from scoring_jobs.calibrate import Administration, estimate_sections
from session_service.config import DEFAULT_SECOND_RATING_SHARE, SECOND_RATING_SALT
from session_service.domain.ratings import decide_rating
from session_service.domain.states import TASK_AWAITING
from toefl_core.calibration import Calibration
from toefl_core.irt import gpcm_probs, prob_3pl
from toefl_core.rating import RUBRIC_MAX, Rating, needs_second_rating, quadratic_weighted_kappa
from validation.recovery import SAMPLE_MEAN, SAMPLE_SD

T = item_pb2
CALIBRATED_SECTIONS = (T.SECTION_READING, T.SECTION_LISTENING)
# Each calibration simulee answers this many operational items, held at their generating parameters (they carry
# the scale, as the live operational items do in the job), beside one block of items being calibrated.
ANCHOR_ITEMS = 30
BLOCK_ITEMS = 40
# Rater model: each rater has a severity (added to the true rubric score, in rubric points, drawn once per rater)
# and each rating its own noise; the sum is rounded into the rubric. Chosen to give the agreement reported for
# trained raters of 0-5 rubrics (exact near 60%, within a point near 97%); the run prints what they gave.
RATERS = 20
RATER_SEVERITY_SD = 0.2
RATER_NOISE_SD = 0.4
# The variance of the person-by-passage effect: reading and listening testlet variances in the literature lie
# between about 0.1 and 0.5 on the ability scale (Wainer, Bradlow and Wang 2007); 0.25 is a middling one.
TESTLET_VARIANCE = 0.25
CALIBRATION_SAMPLE = 1000


@dataclass(frozen=True)
class Condition:
    """What a validation run simulates beyond the ideal: each field is one source of error, off by default."""

    name: str
    # Responses per item of the simulated calibration sample whose estimates score the test; None: the
    # generating parameters score it.
    calibration_sample: int | None = None
    # Ratings by simulated raters resolved by the rating rules; False: the GPCM category is the final rating.
    raters: bool = False
    # Variance of the person-by-passage effect on ability; 0: the items of a passage are independent.
    testlet_variance: float = 0.0

    def describe(self) -> str:
        parts = []
        if self.calibration_sample is not None:
            parts.append(
                f"scored with parameters estimated by the calibration job from {self.calibration_sample:,} "
                "simulated responses per Reading and Listening item"
            )
        if self.raters:
            parts.append(
                f"ratings by {RATERS} simulated raters (severity SD {RATER_SEVERITY_SD}, noise SD "
                f"{RATER_NOISE_SD} rubric points), {DEFAULT_SECOND_RATING_SHARE:.0%} double rated, resolved by "
                "the rating rules"
            )
        if self.testlet_variance > 0:
            parts.append(f"a person-by-passage effect of variance {self.testlet_variance:g} within passages")
        if not parts:
            return "scored with the generating parameters, ratings drawn from the GPCM, passage items independent"
        return ("all at once: " if len(parts) > 1 else "") + "; ".join(parts)


IDEAL = Condition("ideal")


def realistic_conditions(
    *, calibration_sample: int = CALIBRATION_SAMPLE, testlet_variance: float = TESTLET_VARIANCE
) -> list[Condition]:
    """One condition per source of error, each alone, so that each one's cost shows against the ideal row; then
    all of them together, as a live test meets them (their costs need not add up)."""
    return [
        Condition("calibration", calibration_sample=calibration_sample),
        Condition("raters", raters=True),
        Condition("testlet", testlet_variance=testlet_variance),
        Condition(
            "combined", calibration_sample=calibration_sample, raters=True, testlet_variance=testlet_variance
        ),
    ]


@dataclass
class RatingTally:
    """What the simulated raters did over a run: how often the rules asked for a second rating and an
    adjudicator, and the two regular ratings of each double-rated response (for their agreement)."""

    rated: int = 0
    double_rated: int = 0
    adjudicated: int = 0
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def agreement(self) -> tuple[float, float, float | None]:
        """(exact agreement, adjacent agreement, quadratic weighted kappa) of the double ratings."""
        if not self.pairs:
            return 0.0, 0.0, None
        first, second = (np.array(side) for side in zip(*self.pairs, strict=True))
        gaps = np.abs(first - second)
        kappa = quadratic_weighted_kappa(first.tolist(), second.tolist())
        return float(np.mean(gaps == 0)), float(np.mean(gaps <= 1)), kappa


class RaterPanel:
    """Simulated raters: each rates a response as its true rubric score plus the rater's severity plus noise,
    rounded; the platform's own rules (session_service.domain.ratings) decide on a second rating and adjudication.
    Adjudicators are drawn from the same panel (no better than the raters)."""

    def __init__(self, rng: np.random.Generator, tally: RatingTally) -> None:
        self.severity: NDArray[np.float64] = rng.normal(0.0, RATER_SEVERITY_SD, RATERS)
        self.tally = tally

    def final_score(self, response_id: str, true_score: int, top: int, rng: np.random.Generator) -> int:
        """The final rating of one response whose true rubric score is `true_score` (0..top)."""
        double = needs_second_rating(response_id, DEFAULT_SECOND_RATING_SHARE, SECOND_RATING_SALT)
        self.tally.rated += 1
        self.tally.double_rated += double
        state = TASK_AWAITING
        earlier: list[Rating] = []
        for rater in rng.permutation(RATERS)[:3]:
            noisy = true_score + self.severity[rater] + rng.normal(0.0, RATER_NOISE_SD)
            score = int(np.clip(np.rint(noisy), 0, min(top, RUBRIC_MAX)))
            decision = decide_rating(
                response_id=self.tally.rated,
                task_state=state,
                double_rated=double,
                earlier=earlier,
                rater_id=f"rater-{rater}",
                score=score,
            )
            if decision.rating.adjudication:
                self.tally.adjudicated += 1
            if decision.final_score is not None:
                if double:
                    regular = [*earlier, decision.rating][:2]
                    self.tally.pairs.append((regular[0].score, regular[1].score))
                return decision.final_score
            earlier.append(decision.rating)
            state = decision.task_state
        raise AssertionError(f"response {response_id}: the rules asked for more than three ratings")


def _draw_scores(rng: np.random.Generator, theta: NDArray[np.float64], irt: item_pb2.IrtParameters) -> list[int]:
    if irt.model == T.IRT_MODEL_GPCM:
        cumulative = gpcm_probs(theta, irt.a, list(irt.steps)).cumsum(axis=1)
        return [int(s) for s in (rng.random(len(theta))[:, None] > cumulative).sum(axis=1)]
    return [int(s) for s in rng.random(len(theta)) < prob_3pl(theta, irt.a, irt.b, irt.c)]


@dataclass(frozen=True)
class BankCalibration:
    """The calibrated scoring parameters of a bank's items, and how far they landed from the generating ones."""

    parameters: dict[str, item_pb2.IrtParameters]
    responses: int
    # Section -> the calibration job's result for each block of it.
    results: dict[int, list[Calibration]]
    # Section -> RMSE of b of its 3PL items against the generating values.
    b_rmse: dict[int, float]


def calibrate_bank(
    bank: Sequence[item_pb2.Item],
    *,
    responses: int,
    seed: int,
    sections: Sequence[item_pb2.Section.ValueType] = CALIBRATED_SECTIONS,
    done: Callable[[], object] | None = None,
) -> BankCalibration:
    """Every item of `sections` re-estimated from `responses` simulated responses by the calibration job's own
    estimation step (scoring_jobs.calibrate.estimate_sections: MML with operational items fixed, priors, the
    population estimated).

    Per section the items are shuffled into blocks of BLOCK_ITEMS, each calibrated in a run of its own (as pretest
    items come in batches): `responses` simulees, theta ~ N(0.25, 1.1^2) (abler than the reference population, as
    in the recovery study), answer the block and ANCHOR_ITEMS other items of the section held at their generating
    parameters, as operational items. Responses follow the items' IRT models with local independence (no rater or
    testlet error here). `done` is called after each block.
    """
    rng = np.random.default_rng([seed, responses])
    truth = {item.item_id: item for item in bank}
    parameters: dict[str, item_pb2.IrtParameters] = {}
    results: dict[int, list[Calibration]] = {}
    errors: dict[int, list[float]] = {}
    for section in sections:
        ids = sorted(i.item_id for i in bank if i.section == section and i.irt.model != T.IRT_MODEL_UNSPECIFIED)
        order = [ids[k] for k in rng.permutation(len(ids))]
        for start in range(0, len(order), BLOCK_ITEMS):
            block = order[start : start + BLOCK_ITEMS]
            others = [i for i in ids if i not in set(block)]
            anchors = [others[k] for k in rng.choice(len(others), min(ANCHOR_ITEMS, len(others)), replace=False)]
            theta = rng.normal(SAMPLE_MEAN, SAMPLE_SD, responses)
            records: list[Administration] = []
            for item_id, pretest in [*((i, False) for i in anchors), *((i, True) for i in block)]:
                scores = _draw_scores(rng, theta, truth[item_id].irt)
                records.extend(
                    Administration(f"cal-{start}-{p}", section, item_id, score, pretest)
                    for p, score in enumerate(scores)
                )
            items = {i: truth[i] for i in anchors}
            for item_id in block:
                items[item_id] = item_pb2.Item()
                items[item_id].CopyFrom(truth[item_id])
                items[item_id].status = T.ITEM_STATUS_PRETEST
            for result in estimate_sections(records, items, min_responses=responses).values():
                results.setdefault(section, []).append(result)
                for e in result.estimates:
                    generating = truth[e.item_id].irt
                    parameters[e.item_id] = item_pb2.IrtParameters(
                        model=generating.model, a=e.a, b=e.b, c=e.c, steps=e.steps, max_score=generating.max_score
                    )
                    if e.model == "3PL":
                        errors.setdefault(section, []).append(e.b - generating.b)
            if done is not None:
                done()
    b_rmse = {section: float(np.sqrt(np.mean(np.square(found)))) for section, found in errors.items()}
    return BankCalibration(parameters=parameters, responses=responses, results=results, b_rmse=b_rmse)


def calibration_blocks(
    bank: Sequence[item_pb2.Item], sections: Sequence[item_pb2.Section.ValueType] = CALIBRATED_SECTIONS
) -> int:
    """How many calibration runs calibrate_bank makes (for a progress bar)."""
    return sum(-(-sum(1 for i in bank if i.section == s) // BLOCK_ITEMS) for s in sections)


def scoring_bank(
    bank: Sequence[item_pb2.Item], parameters: Mapping[str, item_pb2.IrtParameters]
) -> list[item_pb2.Item]:
    """The bank as the platform would hold it: estimated parameters where there are some, else the generating."""
    result = []
    for generating in bank:
        item = item_pb2.Item()
        item.CopyFrom(generating)
        if item.item_id in parameters:
            item.irt.CopyFrom(parameters[item.item_id])
        result.append(item)
    return result
