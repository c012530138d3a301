"""The paced row places its slowest answers in time, with the advances sent meanwhile (bench.exam_bench)."""

from __future__ import annotations

import pytest

from bench.exam_bench import SLOW_WINDOWS, Tally, answers_by_second, slowest_answers

ORIGIN = 1000.0


def tally(sent: list[tuple[float, float]]) -> Tally:
    """(seconds after ORIGIN, latency ms) per request."""
    return Tally(latencies=[ms for _, ms in sent], sent_at=[ORIGIN + s for s, _ in sent])


def test_slow_answers_in_touching_seconds_make_one_window_and_the_largest_comes_first() -> None:
    answers = tally(
        [(0.5, 300.0), (1.2, 250.0), (2.9, 400.0)]  # seconds 0, 1 and 2: one window, 0-3 s
        + [(10.1, 500.0)]  # alone: 10-11 s
        + [(s / 10, 5.0) for s in range(200)]  # fast answers count nowhere
    )
    advances = {
        "READING ROUTER": tally([(0.2, 80.0), (2.5, 90.0), (9.0, 10.0)]),
        "LISTENING LOWER": tally([(10.5, 40.0)]),
    }
    windows = slowest_answers(answers, advances, ORIGIN, 250.0)
    assert windows == [
        {"from_s": 0, "to_s": 3, "answers": 3, "share": 0.75, "advances": {"READING ROUTER": 2}},
        {"from_s": 10, "to_s": 11, "answers": 1, "share": 0.25, "advances": {"LISTENING LOWER": 1}},
    ]


def test_only_the_windows_holding_most_slow_answers_are_kept() -> None:
    # Windows two seconds apart never touch; window k holds k + 1 slow answers.
    answers = tally([(3.0 * k + 0.5, 200.0) for k in range(SLOW_WINDOWS + 2) for _ in range(k + 1)])
    windows = slowest_answers(answers, {}, ORIGIN, 100.0)
    assert [w["answers"] for w in windows] == list(range(SLOW_WINDOWS + 2, 2, -1))
    assert [w["from_s"] for w in windows] == [3 * k for k in range(SLOW_WINDOWS + 1, 1, -1)]
    assert sum(w["share"] for w in windows) == pytest.approx(sum(range(3, SLOW_WINDOWS + 3)) / 15)


def test_each_second_has_its_answers_its_slow_ones_its_slowest_and_the_advances_sent_in_it() -> None:
    answers = tally([(0.1, 5.0), (0.9, 120.0), (2.5, 99.0), (2.6, 100.0), (2.7, 30.0)])
    advances = {
        "READING ROUTER": tally([(0.5, 80.0), (0.6, 90.0), (2.0, 10.0)]),
        "LISTENING LOWER": tally([(2.2, 40.0), (5.0, 3.0)]),  # second 5 had no answer sent: not a row
    }
    assert answers_by_second(answers, advances, ORIGIN, 100.0) == [
        {"second": 0, "answers": 2, "at_or_beyond": 1, "slowest_ms": 120.0, "advances": {"READING ROUTER": 2}},
        {
            "second": 2,
            "answers": 3,
            "at_or_beyond": 1,
            "slowest_ms": 100.0,
            "advances": {"LISTENING LOWER": 1, "READING ROUTER": 1},
        },
    ]
