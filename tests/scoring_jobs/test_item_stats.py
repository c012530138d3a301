"""The item-statistics formulas against a hand count on a small table of responses."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from toefl.item.v1 import item_pb2

from scoring_jobs.item_stats import ItemFigures, Response, compute_statistics, pearson, run_id_of
from toefl_core.irt import prob_3pl

R, W = item_pb2.SECTION_READING, item_pb2.SECTION_WRITING
# session, section, item, score (-1: not scored yet), max score, answered, elapsed ms
TABLE = [
    ("s1", R, "A", 1, 1, True, 20_000),
    ("s1", R, "B", 1, 1, True, 30_000),
    ("s1", R, "C", 0, 1, True, 40_000),
    ("s2", R, "A", 1, 1, True, 10_000),
    ("s2", R, "B", 0, 1, True, 30_000),
    ("s2", R, "C", 0, 1, False, 0),
    ("s3", R, "A", 0, 1, True, 30_000),
    ("s3", R, "B", 1, 1, True, 60_000),
    ("s3", R, "C", 1, 1, True, 20_000),
    ("s4", R, "A", 1, 1, True, 20_000),
    ("s4", R, "B", 1, 1, True, 30_000),
    ("s4", R, "C", -1, 1, True, 50_000),
    ("s5", R, "B", 0, 1, True, 30_000),
    ("s5", R, "C", 1, 1, True, 30_000),
    ("s1", W, "E", 4, 5, True, 400_000),
    ("s2", W, "E", 2, 5, True, 500_000),
    ("s3", W, "E", -1, 5, True, 600_000),
    ("s1", W, "F", -1, 5, True, 300_000),
]
# As the export sends them: each session's responses together.
RESPONSES = sorted((Response(*row) for row in TABLE), key=lambda r: r.session_id)


def by_item(figures: list[ItemFigures]) -> dict[str, ItemFigures]:
    return {f.item_id: f for f in figures}


def test_hand_count() -> None:
    figures, unscored = compute_statistics(RESPONSES)
    assert [f.item_id for f in figures] == ["A", "B", "C", "E"]
    # F was given but never scored: no p-value can be told, so it is left out.
    assert unscored == ["F"]
    got = by_item(figures)
    # Five sessions took Reading (s1-s5), three took Writing (s1-s3).
    # A: 4 administrations; 3 of 4 correct; rest scores (B + C) 1, 0, 2, 1 (s4's C is not scored yet).
    assert (got["A"].administrations, got["A"].p_value, got["A"].exposure_rate) == (4, 0.75, 0.8)
    assert got["A"].mean_response_seconds == 20.0
    assert got["A"].point_biserial == pytest.approx(-1 / math.sqrt(1.5), abs=1e-12)
    assert got["A"].point_biserial == pytest.approx(statistics.correlation([1, 1, 0, 1], [1, 0, 2, 1]), abs=1e-12)
    # B: every rest score is 1, so the correlation is undefined.
    assert (got["B"].administrations, got["B"].p_value, got["B"].exposure_rate) == (5, 0.6, 1.0)
    assert got["B"].point_biserial is None and got["B"].mean_response_seconds == 36.0
    # C: given 5 times, scored 4 times (s2 unanswered counts as 0); time over the 4 answered ones.
    assert (got["C"].administrations, got["C"].p_value, got["C"].exposure_rate) == (5, 0.5, 1.0)
    assert got["C"].mean_response_seconds == 35.0
    assert got["C"].point_biserial == pytest.approx(-1 / math.sqrt(2), abs=1e-12)
    assert got["C"].point_biserial == pytest.approx(statistics.correlation([0, 0, 1, 1], [2, 1, 1, 0]), abs=1e-12)
    # E: a rated item, 6 of 10 rubric points over the two rated responses; no rest score varies.
    assert (got["E"].administrations, got["E"].p_value, got["E"].exposure_rate) == (3, 0.6, 1.0)
    assert got["E"].point_biserial is None and got["E"].mean_response_seconds == 500.0


def test_the_order_of_sessions_and_of_their_responses_changes_nothing() -> None:
    expected = compute_statistics(RESPONSES)
    rng = random.Random(7)
    sessions = sorted({r.session_id for r in RESPONSES})
    for _ in range(5):
        rng.shuffle(sessions)
        reordered = []
        for session_id in sessions:
            own = [r for r in RESPONSES if r.session_id == session_id]
            rng.shuffle(own)
            # A repeated record of one administration counts once.
            reordered.extend([*own, own[0]])
        assert compute_statistics(reordered) == expected


def test_a_session_whose_responses_are_split_apart_is_refused() -> None:
    s1 = [r for r in RESPONSES if r.session_id == "s1"]
    split = [s1[0], next(r for r in RESPONSES if r.session_id == "s2"), s1[1]]
    with pytest.raises(ValueError, match="session s1"):
        compute_statistics(split)


def test_run_id_follows_the_figures() -> None:
    figures, _ = compute_statistics(RESPONSES)
    changed, _ = compute_statistics([*RESPONSES, Response("s6", R, "A", 1, 1, True, 5_000)])
    assert run_id_of(figures) == run_id_of(list(figures)) and run_id_of(figures).startswith("stats-")
    assert run_id_of(changed) != run_id_of(figures)


def sums(xs: list[int], ys: list[int]) -> float | None:
    pairs = list(zip(xs, ys, strict=True))
    return pearson(
        len(pairs),
        sum(xs),
        sum(ys),
        sum(x * x for x in xs),
        sum(y * y for y in ys),
        sum(x * y for x, y in pairs),
    )


def test_pearson_edges_and_agreement_with_the_standard_library() -> None:
    assert sums([], []) is None
    assert sums([1], [2]) is None
    assert sums([1, 1], [0, 3]) is None
    assert sums([0, 1, 2], [1, 3, 5]) == 1.0
    assert sums([0, 1, 2], [5, 3, 1]) == -1.0
    rng = random.Random(11)
    xs = [rng.randrange(0, 6) for _ in range(40)]
    ys = [rng.randrange(0, 30) for _ in range(40)]
    assert sums(xs, ys) == pytest.approx(statistics.correlation(xs, ys), abs=1e-12)


def test_to_proto_leaves_an_undefined_correlation_unset() -> None:
    figures = by_item(compute_statistics(RESPONSES)[0])
    assert not figures["B"].to_proto().HasField("point_biserial")
    proto = figures["A"].to_proto()
    assert proto.point_biserial == figures["A"].point_biserial and proto.administrations == 4


def test_item_fit_flags_an_item_whose_answers_ignore_ability() -> None:
    """Simulees answer ten 3PL items by the model, and an eleventh, said to discriminate sharply, by a coin: only
    the eleventh misfits."""
    rng = np.random.default_rng(5)
    parameters = {
        f"i{j}": item_pb2.Item(
            item_id=f"i{j}", irt=item_pb2.IrtParameters(model=item_pb2.IRT_MODEL_3PL, a=1.4, b=-1 + 0.2 * j, c=0.2)
        )
        for j in range(10)
    }
    parameters["i10"] = item_pb2.Item(
        item_id="i10", irt=item_pb2.IrtParameters(model=item_pb2.IRT_MODEL_3PL, a=2.2, b=0.0, c=0.2)
    )
    responses = []
    for person in range(600):
        theta = rng.normal()
        for item_id, item in parameters.items():
            chance = 0.5 if item_id == "i10" else float(prob_3pl(theta, item.irt.a, item.irt.b, item.irt.c))
            score = int(rng.random() < chance)
            responses.append(Response(f"s{person:04d}", R, item_id, score, 1, True, 1000))
    figures = by_item(compute_statistics(responses, parameters)[0])
    for item_id in parameters:
        found = figures[item_id]
        assert found.infit is not None and found.outfit is not None
        assert found.misfit == (item_id == "i10"), (item_id, found.infit, found.outfit)
    coin = figures["i10"].infit
    assert coin is not None and coin > 1.3
    # Without parameters (or below the minimum of responses) there is no fit to report.
    plain = by_item(compute_statistics(responses[:110], None)[0])
    assert plain["i0"].infit is None and not plain["i0"].misfit
