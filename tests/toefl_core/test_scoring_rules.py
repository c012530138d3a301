"""Score rules: ETS's rounding examples, every band's CEFR level and 0-120 range, and theta cut tables."""

from __future__ import annotations

import itertools
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from toefl_core.scoring_rules import (
    BANDS,
    ComparableScore,
    CutTable,
    cefr_level,
    comparable_total,
    load_cut_table,
    round_half_band_up,
    theta_to_band,
    total_band,
)

SECTIONS = ("reading", "listening", "writing", "speaking")
ALL_BANDS = ["1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0", "5.5", "6.0"]


def d(text: str) -> Decimal:
    return Decimal(text)


def test_bands_run_from_one_to_six_in_half_steps() -> None:
    assert [str(band) for band in BANDS] == ALL_BANDS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (d("5.125"), "5.0"),  # ETS
        (d("5.25"), "5.5"),  # ETS: a tie goes up
        (d("5.75"), "6.0"),
        (d("4.25"), "4.5"),
        (d("4.75"), "5.0"),
        (d("2.25"), "2.5"),
        (d("3.2499999999"), "3.0"),
        (d("3.375"), "3.5"),
        (d("3.625"), "3.5"),
        (d("4.0"), "4.0"),
        (Fraction(21, 4), "5.5"),
        (Fraction(41, 8), "5.0"),
        (4, "4.0"),
        (d("0.2"), "1.0"),
        (d("6.4"), "6.0"),
        (d("-3"), "1.0"),
    ],
)
def test_round_half_band_up(value, expected: str) -> None:
    got = round_half_band_up(value)
    assert isinstance(got, Decimal)
    assert str(got) == expected


@pytest.mark.parametrize("value", [5.25, True, "5.25"])
def test_round_half_band_up_refuses_inexact_input(value) -> None:
    with pytest.raises(TypeError, match="exact"):
        round_half_band_up(value)


def test_round_half_band_up_refuses_a_non_finite_decimal() -> None:
    with pytest.raises(ValueError, match="finite"):
        round_half_band_up(Decimal("NaN"))


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (("5.0", "5.0", "5.0", "5.5"), "5.0"),  # mean 5.125, ETS's example
        (("5.0", "5.0", "5.5", "5.5"), "5.5"),  # mean 5.25, ETS's example
        (("4.0", "4.5", "4.5", "4.5"), "4.5"),  # mean 4.375
        (("6.0", "6.0", "6.0", "5.0"), "6.0"),  # mean 5.75, a tie
        (("1.0", "1.0", "1.0", "1.0"), "1.0"),
        (("6.0", "6.0", "6.0", "6.0"), "6.0"),
        (("3", "3.5", "4", "4.5"), "4.0"),  # mean 3.75, a tie
    ],
)
def test_total_band_examples(sections: tuple[str, ...], expected: str) -> None:
    assert str(total_band([d(band) for band in sections])) == expected


def test_total_band_over_every_combination_of_section_bands() -> None:
    for combination in itertools.product(range(2, 13), repeat=4):
        # In quarter-half-bands: the mean is sum/4 half bands; adding 2 before the floor division rounds ties up.
        expected_halves = (sum(combination) + 2) // 4
        got = total_band([Decimal(halves) / 2 for halves in combination])
        assert got * 2 == expected_halves, combination


@pytest.mark.parametrize(
    "sections",
    [
        ("5.0", "5.0", "5.0"),
        ("5.0", "5.0", "5.0", "5.0", "5.0"),
        ("5.0", "5.0", "5.0", "4.2"),
        ("5.0", "5.0", "5.0", "6.5"),
        ("5.0", "5.0", "5.0", "0.5"),
    ],
)
def test_total_band_refuses_anything_but_four_valid_bands(sections: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="band"):
        total_band([d(band) for band in sections])


@pytest.mark.parametrize(
    ("band", "level"),
    [
        ("6.0", "C2"),
        ("5.5", "C1"),
        ("5.0", "C1"),
        ("4.5", "B2"),
        ("4.0", "B2"),
        ("3.5", "B1"),
        ("3.0", "B1"),
        ("2.5", "A2"),
        ("2.0", "A2"),
        ("1.5", "A1"),
        ("1.0", "A1"),
        ("5", "C1"),
    ],
)
def test_cefr_level_of_every_band(band: str, level: str) -> None:
    assert cefr_level(d(band)) == level


@pytest.mark.parametrize("band", ["0.5", "6.5", "4.25", "4.1"])
def test_cefr_level_refuses_a_non_band(band: str) -> None:
    with pytest.raises(ValueError, match="not a band"):
        cefr_level(d(band))


COMPARABLE = {
    "6.0": (114, 120, 117),
    "5.5": (107, 113, 110),
    "5.0": (95, 106, 101),
    "4.5": (86, 94, 90),
    "4.0": (72, 85, 79),
    "3.5": (58, 71, 65),
    "3.0": (44, 57, 51),
    "2.5": (34, 43, 39),
    "2.0": (24, 33, 29),
    "1.5": (12, 23, 18),
    "1.0": (0, 11, 6),
}


@pytest.mark.parametrize(("band", "expected"), COMPARABLE.items())
def test_comparable_total_of_every_band(band: str, expected: tuple[int, int, int]) -> None:
    assert comparable_total(d(band)) == ComparableScore(*expected)


def test_comparable_ranges_tile_zero_to_120() -> None:
    ranges = sorted((comparable_total(band).low, comparable_total(band).high) for band in BANDS)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 120
    assert all(high + 1 == next_low for (_, high), (next_low, _) in itertools.pairwise(ranges))


def test_comparable_total_refuses_a_non_band() -> None:
    with pytest.raises(ValueError, match="not a band"):
        comparable_total(d("4.75"))


@pytest.fixture(scope="module")
def table() -> CutTable:
    return load_cut_table()


def test_default_cut_table_is_provisional_and_complete(table: CutTable) -> None:
    assert table.version == "2026.1-provisional"
    assert set(table.cuts) == set(SECTIONS)
    shipped = Path(__file__).resolve().parents[2] / "toefl_core" / "data" / "cut_tables.json"
    assert "provisional" in json.loads(shipped.read_text(encoding="utf-8"))["note"].lower()


@pytest.mark.parametrize("section", SECTIONS)
def test_theta_to_band_at_and_around_every_cut(table: CutTable, section: str) -> None:
    cuts = table.cuts[section]
    assert theta_to_band(cuts[0] - 1.0, section, table) == d("1.0")
    assert theta_to_band(cuts[-1] + 1.0, section, table) == d("6.0")
    for i, cut in enumerate(cuts):
        assert theta_to_band(cut, section, table) == BANDS[i + 1]
        assert theta_to_band(math.nextafter(cut, -math.inf), section, table) == BANDS[i]


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("section", SECTIONS)
def test_a_standard_normal_population_spreads_over_every_band(table: CutTable, section: str) -> None:
    edges = [-math.inf, *table.cuts[section], math.inf]
    shares = [normal_cdf(high) - normal_cdf(low) for low, high in itertools.pairwise(edges)]
    assert all(0.002 < share < 0.3 for share in shares), shares
    # The middle of the population (theta 0) sits in band 4.0.
    assert theta_to_band(0.0, section, table) == d("4.0")


def test_theta_to_band_refuses_an_unknown_section_or_a_non_finite_theta(table: CutTable) -> None:
    with pytest.raises(ValueError, match="unknown section"):
        theta_to_band(0.0, "grammar", table)
    with pytest.raises(ValueError, match="finite"):
        theta_to_band(math.nan, "reading", table)


GOOD_CUTS = [-2.4, -1.9, -1.4, -1.0, -0.6, -0.2, 0.3, 0.8, 1.5, 2.2]


def write_table(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "cuts.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_load_cut_table_reads_a_given_file(tmp_path: Path) -> None:
    shifted = [cut + 0.1 for cut in GOOD_CUTS]
    path = write_table(tmp_path, {"version": "test.1", "cuts": {section: shifted for section in SECTIONS}})
    table = load_cut_table(path)
    assert table.version == "test.1"
    assert table.cuts["writing"] == pytest.approx(tuple(shifted))
    assert theta_to_band(-0.2, "writing", table) == d("3.5")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "JSON object"),
        ({"cuts": {s: GOOD_CUTS for s in SECTIONS}}, "version"),
        ({"version": "", "cuts": {s: GOOD_CUTS for s in SECTIONS}}, "version"),
        ({"version": "v", "cuts": [GOOD_CUTS]}, "'cuts'"),
        ({"version": "v", "cuts": {s: GOOD_CUTS for s in SECTIONS[:3]}}, r"missing: \['speaking'\]"),
        ({"version": "v", "cuts": {s: GOOD_CUTS for s in (*SECTIONS, "grammar")}}, r"unknown: \['grammar'\]"),
        ({"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "reading": GOOD_CUTS[:9]}}, "10 cuts"),
        ({"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "reading": [*GOOD_CUTS, 3.0]}}, "10 cuts"),
        (
            {"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "listening": [*GOOD_CUTS[:9], 1.5]}},
            "strictly increasing",
        ),
        (
            {"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "writing": [*GOOD_CUTS[:9], "2.2"]}},
            "not a finite number",
        ),
        (
            {"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "speaking": [*GOOD_CUTS[:9], True]}},
            "not a finite number",
        ),
        (
            # json.dumps writes Infinity, which json.loads reads back: the table must still refuse it.
            {"version": "v", "cuts": {**{s: GOOD_CUTS for s in SECTIONS}, "reading": [*GOOD_CUTS[:9], math.inf]}},
            "not a finite number",
        ),
    ],
)
def test_load_cut_table_rejects_a_malformed_table(tmp_path: Path, document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_cut_table(write_table(tmp_path, document))


def test_load_cut_table_rejects_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "cuts.json"
    path.write_text('{"version": "v", "cuts": ', encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_cut_table(path)
