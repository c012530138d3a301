"""Monte Carlo simulation of the two-stage adaptive test against a linear test, ideally or under one error."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import session_service_pb2 as pb

from item_service.assembly import AssemblyIndex, assemble, build_index
from item_service.demo_bank import DEFAULT_SEED, generate_demo_bank
from session_service.blueprint import Blueprint, SectionPlan, load_blueprint
from session_service.routing import router_ability
from toefl_core.irt import gpcm_probs, prob_3pl
from toefl_core.scoring import ScoredItem, SectionScore, score_answer, score_section, total_score
from toefl_core.scoring_rules import SECTIONS, CutTable, load_cut_table, theta_to_band
from validation.conditions import IDEAL, Condition, RaterPanel, RatingTally, scoring_bank

T = item_pb2
ADAPTIVE = "adaptive"
LINEAR = "linear"
SECTION_NAMES: Mapping[item_pb2.Section.ValueType, str] = dict(
    zip((T.SECTION_READING, T.SECTION_LISTENING, T.SECTION_WRITING, T.SECTION_SPEAKING), SECTIONS, strict=True)
)


def wrong_completion(expected: str) -> str:
    """The simulee's wrong answer to a damaged word: letters, as session_service requires, but not the key's."""
    return ("q" if expected[:1].lower() != "q" else "x") * max(len(expected), 1)


def active_bank(seed: int = DEFAULT_SEED) -> list[item_pb2.Item]:
    """The demo bank's active items, with their external ids as item ids (what storage would assign instead)."""
    items = []
    for generated in generate_demo_bank(seed).items:
        if generated.status != T.ITEM_STATUS_ACTIVE:
            continue
        item = item_pb2.Item()
        item.CopyFrom(generated)
        item.item_id = item.item_id or item.external_id
        items.append(item)
    return items


class Simulee:
    """A simulated test taker of true ability theta who answers by the items' generating IRT models.

    `truth` holds the generating parameters when the items delivered carry estimated ones (by item id; the
    delivered item's own otherwise). A passage's items are answered at theta plus the simulee's effect for that
    passage when `testlet_sd` > 0. A rated response's rubric score is the GPCM category itself, or what `raters`
    make of it. Testlet effects and rater draws come from `effects_rng`, so that a condition leaves the answers
    that it does not touch as the ideal run drew them.
    """

    def __init__(
        self,
        theta: float,
        rng: np.random.Generator,
        *,
        truth: Mapping[str, item_pb2.IrtParameters] | None = None,
        testlet_sd: float = 0.0,
        raters: RaterPanel | None = None,
        effects_rng: np.random.Generator | None = None,
        name: str = "",
    ) -> None:
        self.theta = theta
        self.rng = rng
        self.truth = truth or {}
        self.testlet_sd = testlet_sd
        self.raters = raters
        self.effects_rng = rng if effects_rng is None else effects_rng
        self.name = name
        self.passage_effects: dict[str, float] = {}
        # Rubric scores of rated responses, final as the rating rules would leave them.
        self.ratings: dict[str, int] = {}

    def _theta(self, item: item_pb2.Item) -> float:
        if self.testlet_sd <= 0 or not item.passage_id:
            return self.theta
        if item.passage_id not in self.passage_effects:
            self.passage_effects[item.passage_id] = float(self.effects_rng.normal(0.0, self.testlet_sd))
        return self.theta + self.passage_effects[item.passage_id]

    def _category(self, theta: float, irt: item_pb2.IrtParameters) -> int:
        probs = gpcm_probs(theta, irt.a, list(irt.steps))[0]
        return int(self.rng.choice(probs.shape[0], p=probs / probs.sum()))

    def answer(self, item: item_pb2.Item) -> pb.Answer:
        irt = self.truth.get(item.item_id, item.irt)
        key = item.answer_key
        theta = self._theta(item)
        if irt.model == T.IRT_MODEL_GPCM:
            category = self._category(theta, irt)
            if item.task_type == T.TASK_TYPE_COMPLETE_THE_WORDS:
                right = set(self.rng.permutation(len(key.completions))[:category].tolist())
                values = [
                    expected if slot in right else wrong_completion(expected)
                    for slot, expected in enumerate(key.completions)
                ]
                return pb.Answer(completions=pb.StringList(values=values))
            self.ratings[item.item_id] = (
                category
                if self.raters is None
                else self.raters.final_score(
                    f"{self.name}/{item.item_id}", category, len(irt.steps), self.effects_rng
                )
            )
            if item.section == T.SECTION_SPEAKING:
                return pb.Answer(speech=pb.SpeechResponse(audio_ref=f"sim://{item.item_id}", duration_ms=30_000))
            return pb.Answer(text="A simulated response.")
        correct = bool(self.rng.random() < float(prob_3pl(theta, irt.a, irt.b, irt.c)))
        if item.task_type == T.TASK_TYPE_BUILD_A_SENTENCE:
            words = list(key.correct_sequence)
            if not correct:
                # Any other order is wrong; swapping the first two words is one.
                words[0], words[1] = words[1], words[0]
            return pb.Answer(word_sequence=pb.StringList(values=words))
        options = len(item.content.options)
        choice = (
            key.correct_option if correct else (key.correct_option + int(self.rng.integers(1, options))) % options
        )
        return pb.Answer(choice_index=choice)

    def take(self, items: Sequence[item_pb2.Item]) -> dict[str, pb.Answer]:
        return {item.item_id: self.answer(item) for item in items}

    def scored(self, items: Sequence[item_pb2.Item], answers: Mapping[str, pb.Answer]) -> list[ScoredItem]:
        """Objective items by score_answer; rated items by the simulated rating (0 if none)."""
        result = []
        for item in items:
            score = score_answer(item, answers.get(item.item_id))
            result.append(ScoredItem.of(item, self.ratings.get(item.item_id, 0) if score is None else score))
        return result


@dataclass(frozen=True)
class Outcome:
    """One simulee's estimate in one section under one design."""

    true_theta: float
    score: SectionScore
    items: int
    routed_upper: bool | None


def _module_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**62))


def _assembled(
    index: AssemblyIndex, spec: item_service_pb2.ModuleSpec, exclude: Sequence[str], rng: np.random.Generator
) -> list[item_pb2.Item]:
    return assemble(index, spec=spec, exclude=exclude, seed=_module_seed(rng)).items


def _adaptive_section(
    index: AssemblyIndex, plan: SectionPlan, simulee: Simulee, cut_table: CutTable
) -> dict[str, Outcome]:
    """Router -> route -> lower/upper module; the linear design shares the router and its responses, then takes a
    second module of the routed module's task counts assembled at the router's target, whatever the answers were.
    The task counts are equal, the realised lengths need not be: a passage fills a count whole and may overshoot
    it (the report gives the difference beside the paired comparison).
    """
    assert plan.routing is not None
    name = SECTION_NAMES[plan.section]
    router_plan = plan.first()
    router = _assembled(index, router_plan.spec(), (), simulee.rng)
    router_answers = simulee.take(router)
    stage_name, _ = plan.routing.route(router_ability(router, router_answers, cut_table).theta)
    stage = pb.ModuleStage.Value(stage_name)
    seen = [item.item_id for item in router]
    second_spec = plan.stage(stage).spec()
    linear_spec = item_service_pb2.ModuleSpec()
    linear_spec.CopyFrom(second_spec)
    linear_spec.difficulty_target = router_plan.difficulty_target
    outcomes = {}
    for design, spec in ((ADAPTIVE, second_spec), (LINEAR, linear_spec)):
        second = _assembled(index, spec, seen, simulee.rng)
        answers = {**router_answers, **simulee.take(second)}
        items = router + second
        outcomes[design] = Outcome(
            true_theta=simulee.theta,
            score=score_section(simulee.scored(items, answers), section=name, cut_table=cut_table),
            items=len(items),
            routed_upper=stage == pb.MODULE_STAGE_UPPER if design == ADAPTIVE else None,
        )
    return outcomes


def _linear_section(index: AssemblyIndex, plan: SectionPlan, simulee: Simulee, cut_table: CutTable) -> Outcome:
    items = _assembled(index, plan.first().spec(), (), simulee.rng)
    answers = simulee.take(items)
    name = SECTION_NAMES[plan.section]
    score = score_section(simulee.scored(items, answers), section=name, cut_table=cut_table)
    return Outcome(true_theta=simulee.theta, score=score, items=len(items), routed_upper=None)


@dataclass(frozen=True)
class DesignStatistics:
    """Recovery of the true ability by one design in one section."""

    section: str
    design: str
    simulees: int
    mean_items: float
    rmse: float
    bias: float
    correlation: float
    mean_se: float
    exact_band: float
    within_half_band: float
    upper_share: float | None


def _statistics(section: str, design: str, outcomes: Sequence[Outcome], cut_table: CutTable) -> DesignStatistics:
    true = np.array([o.true_theta for o in outcomes])
    estimate = np.array([o.score.theta for o in outcomes])
    error = estimate - true
    true_bands = np.array([float(theta_to_band(t, section, cut_table)) for t in true])
    bands = np.array([float(o.score.band) for o in outcomes])
    routed = [o.routed_upper for o in outcomes if o.routed_upper is not None]
    return DesignStatistics(
        section=section,
        design=design,
        simulees=len(outcomes),
        mean_items=float(np.mean([o.items for o in outcomes])),
        rmse=float(np.sqrt(np.mean(error**2))),
        bias=float(np.mean(error)),
        correlation=float(np.corrcoef(true, estimate)[0, 1]),
        mean_se=float(np.mean([o.score.se for o in outcomes])),
        exact_band=float(np.mean(bands == true_bands)),
        within_half_band=float(np.mean(np.abs(bands - true_bands) <= 0.5)),
        upper_share=float(np.mean(routed)) if routed else None,
    )


@dataclass(frozen=True)
class PairedComparison:
    """Adaptive against linear for the same simulees: the difference of their squared errors, with its 95%
    confidence interval, and how their lengths differ (whole passages make realised lengths differ)."""

    section: str
    # Mean over simulees of (linear error)^2 - (adaptive error)^2: positive when adaptive is more accurate.
    mse_difference: float
    ci_low: float
    ci_high: float
    z: float
    # Mean of adaptive length - linear length, in items, and the share of simulees whose lengths differ.
    length_difference: float
    unequal_length_share: float

    @property
    def verdict(self) -> str:
        if self.ci_low > 0:
            return "adaptive better (the 95% interval lies above 0)"
        if self.ci_high < 0:
            return "linear better (the 95% interval lies below 0)"
        return "no difference shown (the 95% interval holds 0)"


def paired_comparison(section: str, adaptive: Sequence[Outcome], linear: Sequence[Outcome]) -> PairedComparison:
    """The paired comparison of two designs taken by the same simulees, in the same order."""
    gain = np.array(
        [
            (lin.score.theta - lin.true_theta) ** 2 - (ad.score.theta - ad.true_theta) ** 2
            for ad, lin in zip(adaptive, linear, strict=True)
        ]
    )
    mean = float(gain.mean())
    error = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("inf")
    lengths = np.array([ad.items - lin.items for ad, lin in zip(adaptive, linear, strict=True)])
    return PairedComparison(
        section=section,
        mse_difference=mean,
        ci_low=mean - 1.96 * error,
        ci_high=mean + 1.96 * error,
        z=mean / error if error > 0 else 0.0,
        length_difference=float(lengths.mean()),
        unequal_length_share=float(np.mean(lengths != 0)),
    )


@dataclass(frozen=True)
class Report:
    condition: Condition
    simulees: int
    seed: int
    bank_seed: int
    blueprint_version: str
    cut_table_version: str
    rows: list[DesignStatistics]
    total_exact_band: float
    total_within_half_band: float
    comparisons: list[PairedComparison]
    # What the simulated raters did, under the raters condition.
    ratings: RatingTally | None = None

    def row(self, section: str, design: str) -> DesignStatistics:
        return next(r for r in self.rows if r.section == section and r.design == design)


# Kinds of random stream under one seed: a simulee's answers, its passage effects and raters' noise, the panel.
ANSWER_STREAM, EFFECT_STREAM, RATER_STREAM = 0, 1, 2


def _stream(seed: int, kind: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(kind, *key)))


def simulate(
    simulees: int,
    seed: int,
    *,
    condition: Condition = IDEAL,
    scoring_parameters: Mapping[str, item_pb2.IrtParameters] | None = None,
    bank_seed: int = DEFAULT_SEED,
    blueprint: Blueprint | None = None,
    cut_table: CutTable | None = None,
    progress: Callable[[int], object] | None = None,
) -> Report:
    """Simulees with theta ~ N(0, 1) take every section; Reading and Listening adaptively and linearly.

    Each simulee has one true theta for all four sections. `scoring_parameters` (item id -> estimated parameters,
    validation.conditions.calibrate_bank) replace the generating ones wherever the platform reads them: assembly,
    routing and scoring; the simulees still answer by the generating ones. The same seed gives the same simulees
    under every condition. `progress` is called with 1 after each simulee.
    """
    if simulees < 2:
        raise ValueError(f"statistics need at least 2 simulees, got {simulees}")
    plan = load_blueprint() if blueprint is None else blueprint
    cuts = load_cut_table() if cut_table is None else cut_table
    bank = active_bank(bank_seed)
    truth = {item.item_id: item.irt for item in bank}
    index = build_index(scoring_bank(bank, scoring_parameters or {}))
    tally = RatingTally() if condition.raters else None
    panel = RaterPanel(_stream(seed, RATER_STREAM), tally) if tally is not None else None
    thetas = np.random.default_rng(seed).standard_normal(simulees)
    outcomes: dict[tuple[str, str], list[Outcome]] = {}
    total_hits = np.zeros((simulees, 2), dtype=bool)
    for number, theta in enumerate(thetas):
        # Each simulee draws from its own streams, so one simulee's path does not shift the next one's.
        simulee = Simulee(
            float(theta),
            _stream(seed, ANSWER_STREAM, number),
            truth=truth,
            testlet_sd=float(np.sqrt(condition.testlet_variance)),
            raters=panel,
            effects_rng=_stream(seed, EFFECT_STREAM, number),
            name=str(number),
        )
        bands: dict[str, Decimal] = {}
        true_bands: dict[str, Decimal] = {}
        for section_plan in plan.sections:
            # A stream per section too: a condition that changes one section's path leaves the others' answers.
            simulee.rng = _stream(seed, ANSWER_STREAM, number, section_plan.section)
            name = SECTION_NAMES[section_plan.section]
            if section_plan.adaptive:
                for design, outcome in _adaptive_section(index, section_plan, simulee, cuts).items():
                    outcomes.setdefault((name, design), []).append(outcome)
                bands[name] = outcomes[(name, ADAPTIVE)][-1].score.band
            else:
                outcome = _linear_section(index, section_plan, simulee, cuts)
                outcomes.setdefault((name, LINEAR), []).append(outcome)
                bands[name] = outcome.score.band
            true_bands[name] = theta_to_band(simulee.theta, name, cuts)
        if set(bands) == set(SECTIONS):
            gap = abs(total_score(bands).band - total_score(true_bands).band)
            total_hits[number] = (gap == 0, gap <= Decimal("0.5"))
        if progress is not None:
            progress(1)
    rows = [
        _statistics(section, design, outcomes[(section, design)], cuts)
        for section in SECTIONS
        for design in (ADAPTIVE, LINEAR)
        if (section, design) in outcomes
    ]
    return Report(
        condition=condition,
        simulees=simulees,
        seed=seed,
        bank_seed=bank_seed,
        blueprint_version=plan.version,
        cut_table_version=cuts.version,
        rows=rows,
        total_exact_band=float(total_hits[:, 0].mean()),
        total_within_half_band=float(total_hits[:, 1].mean()),
        comparisons=[
            paired_comparison(section, outcomes[(section, ADAPTIVE)], outcomes[(section, LINEAR)])
            for section in SECTIONS
            if (section, ADAPTIVE) in outcomes and (section, LINEAR) in outcomes
        ],
        ratings=tally,
    )
