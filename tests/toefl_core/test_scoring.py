"""Objective item scores, section EAP and bands, and totals, against hand-made items and hand computations."""

from __future__ import annotations

import math
from decimal import Decimal
from types import MappingProxyType

import pytest
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from toefl_core.scoring import ScoredItem, score_answer, score_section, total_score
from toefl_core.scoring_rules import CutTable

T = item_pb2
CUTS = (-2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
TABLE = CutTable(version="test-1", cuts=MappingProxyType(dict.fromkeys(("reading", "listening"), CUTS)))


def mc_item(correct: int = 2) -> item_pb2.Item:
    return T.Item(
        item_id="mc",
        task_type=T.TASK_TYPE_READ_ACADEMIC_PASSAGE,
        content=T.ItemContent(options=["a", "b", "c", "d"]),
        answer_key=T.AnswerKey(correct_option=correct),
        irt=T.IrtParameters(model=T.IRT_MODEL_3PL, a=1.2, b=0.3, c=0.2),
    )


def sentence_item() -> item_pb2.Item:
    return T.Item(
        item_id="bas",
        task_type=T.TASK_TYPE_BUILD_A_SENTENCE,
        answer_key=T.AnswerKey(correct_sequence=["where", "is", "the", "library"]),
    )


def ctw_item() -> item_pb2.Item:
    return T.Item(
        item_id="ctw",
        task_type=T.TASK_TYPE_COMPLETE_THE_WORDS,
        answer_key=T.AnswerKey(completions=["ple", "ther", "dent", "y"]),
        irt=T.IrtParameters(model=T.IRT_MODEL_GPCM, a=0.9, steps=[-1.0, 0.0, 0.5, 1.5]),
    )


def choice(index: int) -> pb.Answer:
    return pb.Answer(choice_index=index)


def words(*values: str) -> pb.Answer:
    return pb.Answer(word_sequence=pb.StringList(values=values))


def completions(*values: str) -> pb.Answer:
    return pb.Answer(completions=pb.StringList(values=values))


def test_multiple_choice_scores_the_key_one_and_anything_else_zero() -> None:
    item = mc_item(correct=2)
    assert score_answer(item, choice(2)) == 1
    assert [score_answer(item, choice(i)) for i in (0, 1, 3)] == [0, 0, 0]
    assert score_answer(mc_item(correct=0), choice(0)) == 1
    assert score_answer(mc_item(correct=0), pb.Answer()) == 0, "an empty answer is not option 0"


def test_build_a_sentence_needs_the_exact_sequence() -> None:
    item = sentence_item()
    assert score_answer(item, words("where", "is", "the", "library")) == 1
    assert score_answer(item, words("is", "where", "the", "library")) == 0
    assert score_answer(item, words("where", "is", "the")) == 0
    assert score_answer(item, words("where", "is", "the", "library", "now")) == 0
    assert score_answer(item, words("Where", "is", "the", "library")) == 0, "Build a Sentence is exact"


def test_complete_the_words_counts_matching_slots_ignoring_case_and_spaces() -> None:
    item = ctw_item()
    assert score_answer(item, completions("ple", "ther", "dent", "y")) == 4
    assert score_answer(item, completions(" PLE ", "Ther\t", "dant", "")) == 2
    assert score_answer(item, completions("ple")) == 1, "missing trailing slots are wrong, not an error"
    assert score_answer(item, completions("ple", "ther", "dent", "y", "extra")) == 4
    assert score_answer(item, completions("ther", "ple", "y", "dent")) == 0, "slots are matched by position"


@pytest.mark.parametrize(
    "task_type",
    [
        T.TASK_TYPE_WRITE_AN_EMAIL,
        T.TASK_TYPE_ACADEMIC_DISCUSSION,
        T.TASK_TYPE_LISTEN_AND_REPEAT,
        T.TASK_TYPE_TAKE_AN_INTERVIEW,
    ],
)
def test_rated_tasks_wait_for_ratings(task_type: item_pb2.TaskType.ValueType) -> None:
    item = T.Item(item_id="rated", task_type=task_type)
    assert score_answer(item, pb.Answer(text="Dear Professor, ...")) is None
    assert score_answer(item, pb.Answer(speech=pb.SpeechResponse(audio_ref="a"))) is None
    assert score_answer(item, None) is None


@pytest.mark.parametrize(
    "answer",
    [None, pb.Answer(), pb.Answer(text="2"), pb.Answer(speech=pb.SpeechResponse(transcript="x"))],
    ids=["none", "empty", "text", "speech"],
)
def test_missing_or_wrong_shape_scores_zero(answer: pb.Answer | None) -> None:
    assert score_answer(mc_item(), answer) == 0
    assert score_answer(sentence_item(), answer) == 0
    assert score_answer(ctw_item(), answer) == 0
    assert score_answer(mc_item(), words("c")) == 0
    assert score_answer(ctw_item(), choice(2)) == 0
    assert score_answer(sentence_item(), completions("where", "is", "the", "library")) == 0


def test_an_item_without_a_task_type_has_no_rule() -> None:
    with pytest.raises(ValueError, match="no scoring rule"):
        score_answer(T.Item(item_id="x"), choice(0))


def hand_eap(
    dichotomous: list[tuple[float, float, float, int]], polytomous: list[tuple[float, list[float], int]]
) -> tuple[float, float]:
    """EAP on 61 points in [-6, 6] with a N(0, 1) prior, written out with plain floats."""
    grid = [-6.0 + 0.2 * k for k in range(61)]
    weights = []
    for theta in grid:
        weight = math.exp(-0.5 * theta * theta)
        for a, b, c, u in dichotomous:
            p = c + (1 - c) / (1 + math.exp(-a * (theta - b)))
            weight *= p if u == 1 else 1 - p
        for a, steps, score in polytomous:
            numerators = [math.exp(sum(a * (theta - s) for s in steps[:k])) for k in range(len(steps) + 1)]
            weight *= numerators[score] / sum(numerators)
        weights.append(weight)
    total = sum(weights)
    mean = sum(w * t for w, t in zip(weights, grid, strict=True)) / total
    variance = sum(w * (t - mean) ** 2 for w, t in zip(weights, grid, strict=True)) / total
    return mean, math.sqrt(variance)


def hand_band(theta: float) -> Decimal:
    return Decimal(1) + Decimal("0.5") * sum(1 for cut in CUTS if theta >= cut)


def scored(item_id: str, a: float, b: float, c: float, score: int) -> ScoredItem:
    return ScoredItem(item_id=item_id, model=T.IRT_MODEL_3PL, a=a, b=b, c=c, steps=(), score=score)


def test_section_eap_band_and_range_match_a_hand_computation() -> None:
    dichotomous = [(1.2, -0.5, 0.2, 1), (0.8, 0.4, 0.25, 1), (1.5, 1.1, 0.0, 0), (1.0, 0.0, 0.2, 1)]
    gpcm = (0.9, [-1.0, 0.0, 0.5, 1.5], 3)
    responses = [scored(f"i{n}", a, b, c, u) for n, (a, b, c, u) in enumerate(dichotomous)]
    responses.append(ScoredItem("ctw", T.IRT_MODEL_GPCM, gpcm[0], 0.0, 0.0, tuple(gpcm[1]), gpcm[2]))
    result = score_section(responses, section="reading", cut_table=TABLE)
    theta, se = hand_eap(dichotomous, [gpcm])
    assert result.theta == pytest.approx(theta, abs=1e-9)
    assert result.se == pytest.approx(se, abs=1e-9)
    assert result.band == hand_band(theta)
    assert result.band_low == hand_band(theta - se) and result.band_high == hand_band(theta + se)
    assert result.band_low < result.band < result.band_high
    assert result.items_used == 5 and result.section == "reading" and result.cut_table_version == "test-1"
    cefr = {"1": "A1", "2": "A2", "3": "B1", "4": "B2", "5": "C1", "6": "C2"}
    assert result.cefr == cefr[str(int(result.band))]


def test_unanswered_items_count_as_wrong() -> None:
    items = [mc_item(correct=1), ctw_item()]
    unanswered = [ScoredItem.of(item, score_answer(item, None) or 0) for item in items]
    wrong = [ScoredItem.of(items[0], 0), ScoredItem.of(items[1], 0)]
    left_out = score_section(unanswered[1:], section="reading", cut_table=TABLE)
    assert score_section(unanswered, section="reading", cut_table=TABLE) == score_section(
        wrong, section="reading", cut_table=TABLE
    )
    assert score_section(unanswered, section="reading", cut_table=TABLE).theta < left_out.theta


def test_more_right_answers_never_lower_the_estimate() -> None:
    thetas = [
        score_section(
            [scored(f"i{n}", 1.2, -1.0 + 0.5 * n, 0.2, int(n < right)) for n in range(5)],
            section="listening",
            cut_table=TABLE,
        ).theta
        for right in range(6)
    ]
    assert thetas == sorted(thetas) and thetas[0] < -0.5 < 0.5 < thetas[-1]


def test_scored_item_rejects_scores_outside_its_model() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        scored("x", 1.0, 0.0, 0.2, 2)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        ScoredItem("x", T.IRT_MODEL_GPCM, 1.0, 0.0, 0.0, (-1.0, 0.0, 0.5, 1.5), 5)
    with pytest.raises(ValueError, match="no IRT model"):
        ScoredItem("x", T.IRT_MODEL_UNSPECIFIED, 1.0, 0.0, 0.0, (), 0)
    assert ScoredItem.of(ctw_item(), 7).score == 4, "a testlet score is capped at its top category"


def test_no_items_give_the_prior() -> None:
    result = score_section([], section="reading", cut_table=TABLE)
    assert result.theta == pytest.approx(0.0, abs=1e-12) and result.se == pytest.approx(1.0, abs=1e-3)
    assert result.items_used == 0


@pytest.mark.parametrize(
    ("bands", "total", "cefr", "low", "high", "midpoint"),
    [
        (("5.5", "5.0", "5.0", "5.0"), "5.0", "C1", 95, 106, 101),
        (("5.5", "5.5", "5.0", "5.0"), "5.5", "C1", 107, 113, 110),
        (("4.5", "4.5", "4.5", "4.5"), "4.5", "B2", 86, 94, 90),
        (("6.0", "6.0", "6.0", "5.5"), "6.0", "C2", 114, 120, 117),
        (("1.0", "1.0", "1.5", "1.0"), "1.0", "A1", 0, 11, 6),
    ],
)
def test_total_score(bands: tuple[str, ...], total: str, cefr: str, low: int, high: int, midpoint: int) -> None:
    sections = ("reading", "listening", "writing", "speaking")
    result = total_score({section: Decimal(band) for section, band in zip(sections, bands, strict=True)})
    assert str(result.band) == total and result.cefr == cefr
    assert (result.comparable.low, result.comparable.high, result.comparable.midpoint) == (low, high, midpoint)


def test_total_needs_all_four_sections() -> None:
    with pytest.raises(ValueError, match="exactly"):
        total_score({"reading": Decimal("4.0"), "listening": Decimal("4.0"), "writing": Decimal("4.0")})
