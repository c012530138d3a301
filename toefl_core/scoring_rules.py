"""TOEFL 2026 score rules in exact arithmetic: half-band rounding, total, CEFR, 0-120 and theta cut tables."""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

SECTIONS: tuple[str, ...] = ("reading", "listening", "writing", "speaking")
DEFAULT_CUT_TABLE_PATH = Path(__file__).resolve().parent / "data" / "cut_tables.json"

# Keyed by twice the band: an exact integer, so "5", "5.0" and Fraction(5) all find the same entry.
_CEFR_BY_HALF_BANDS = {
    12: "C2",
    11: "C1",
    10: "C1",
    9: "B2",
    8: "B2",
    7: "B1",
    6: "B1",
    5: "A2",
    4: "A2",
    3: "A1",
    2: "A1",
}
# Comparable 0-120 totals per band (in half bands); the ranges below 3.5 come from third-party tables.
_COMPARABLE_BY_HALF_BANDS = {
    12: (114, 120),
    11: (107, 113),
    10: (95, 106),
    9: (86, 94),
    8: (72, 85),
    7: (58, 71),
    6: (44, 57),
    5: (34, 43),
    4: (24, 33),
    3: (12, 23),
    2: (0, 11),
}


def _exact(value: Fraction | Decimal | int) -> Fraction:
    # bool is an int and float is inexact: both would hide a caller's mistake behind a plausible band.
    if isinstance(value, bool) or not isinstance(value, Fraction | Decimal | int):
        raise TypeError(f"scores need exact arithmetic (Fraction, Decimal or int), got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"a score must be finite, got {value}")
    return Fraction(value)


def _from_half_bands(halves: int) -> Decimal:
    # One decimal place always ("5.0", not "5"), as bands are printed on score reports.
    return (Decimal(halves) / 2).quantize(Decimal("0.1"))


BANDS: tuple[Decimal, ...] = tuple(_from_half_bands(halves) for halves in range(2, 13))


def _half_bands(band: Decimal) -> int:
    exact = _exact(band)
    if exact.denominator not in (1, 2) or not 2 <= exact * 2 <= 12:
        raise ValueError(f"{band} is not a band (1.0 to 6.0 in steps of 0.5)")
    return int(exact * 2)


def round_half_band_up(value: Fraction | Decimal | int) -> Decimal:
    """The nearest half band with ties upward (5.25 -> 5.5, 5.125 -> 5.0), clipped to [1.0, 6.0]."""
    halves = math.floor(_exact(value) * 2 + Fraction(1, 2))
    return _from_half_bands(min(max(halves, 2), 12))


def total_band(section_bands: Sequence[Decimal]) -> Decimal:
    """The mean of the four section bands rounded to the nearest half band, ties upward."""
    if len(section_bands) != len(SECTIONS):
        raise ValueError(f"a total needs exactly {len(SECTIONS)} section bands, got {len(section_bands)}")
    halves = sum(_half_bands(band) for band in section_bands)
    return round_half_band_up(Fraction(halves, 2 * len(SECTIONS)))


def cefr_level(band: Decimal) -> str:
    """The CEFR level of a band: 6 C2; 5.5, 5 C1; 4.5, 4 B2; 3.5, 3 B1; 2.5, 2 A2; 1.5, 1 A1."""
    return _CEFR_BY_HALF_BANDS[_half_bands(band)]


@dataclass(frozen=True)
class ComparableScore:
    """A band's range on the former 0-120 scale and its midpoint (rounded half up)."""

    low: int
    high: int
    midpoint: int


def comparable_total(band: Decimal) -> ComparableScore:
    """The 0-120 range of a total band and its midpoint, e.g. 4.5 -> 86-94 -> 90."""
    low, high = _COMPARABLE_BY_HALF_BANDS[_half_bands(band)]
    return ComparableScore(low=low, high=high, midpoint=(low + high + 1) // 2)


@dataclass(frozen=True)
class CutTable:
    """Theta cuts per section: theta >= cuts[section][i] reaches BANDS[i + 1]."""

    version: str
    cuts: Mapping[str, tuple[float, ...]]


def _section_cuts(section: str, raw: object) -> tuple[float, ...]:
    expected = len(BANDS) - 1
    if not isinstance(raw, list) or len(raw) != expected:
        raise ValueError(f"cut table: section {section!r} needs a list of {expected} cuts, got {raw!r}")
    if not all(isinstance(cut, int | float) and not isinstance(cut, bool) and math.isfinite(cut) for cut in raw):
        raise ValueError(f"cut table: section {section!r} has a cut that is not a finite number: {raw!r}")
    cuts = tuple(float(cut) for cut in raw)
    if any(low >= high for low, high in itertools.pairwise(cuts)):
        raise ValueError(f"cut table: the cuts of section {section!r} must be strictly increasing, got {cuts}")
    return cuts


def load_cut_table(path: Path | None = None) -> CutTable:
    """Read and validate a cut table (JSON: version, cuts per section); by default the shipped one."""
    source = DEFAULT_CUT_TABLE_PATH if path is None else path
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"cut table {source} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"cut table {source} must be a JSON object with 'version' and 'cuts'")
    version = document.get("version")
    if not isinstance(version, str) or not version.strip():
        raise ValueError(f"cut table {source} needs a non-empty string 'version'")
    raw_cuts = document.get("cuts")
    if not isinstance(raw_cuts, dict):
        raise ValueError(f"cut table {source} needs an object 'cuts' with one list per section")
    missing = [section for section in SECTIONS if section not in raw_cuts]
    unknown = sorted(set(raw_cuts) - set(SECTIONS))
    if missing or unknown:
        raise ValueError(
            f"cut table {source} must have exactly the sections {', '.join(SECTIONS)}; "
            f"missing: {missing or 'none'}, unknown: {unknown or 'none'}"
        )
    cuts = {section: _section_cuts(section, raw_cuts[section]) for section in SECTIONS}
    return CutTable(version=version, cuts=MappingProxyType(cuts))


def theta_to_band(theta: float, section: str, table: CutTable) -> Decimal:
    """The section band reached by an ability estimate under a cut table."""
    if section not in table.cuts:
        raise ValueError(f"unknown section {section!r}; expected one of {', '.join(sorted(table.cuts))}")
    if not math.isfinite(theta):
        raise ValueError(f"theta must be finite, got {theta}")
    # bisect_right counts the cuts at or below theta, so a theta exactly on a cut reaches the upper band.
    return BANDS[bisect.bisect_right(table.cuts[section], theta)]
