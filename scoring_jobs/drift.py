"""The drift report: each operational item's difficulty re-estimated from its live responses, beside its own."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from toefl.item.v1 import item_pb2

from scoring_jobs.calibrate import SCORED_MODELS, Administration, export_sittings, fetch_items, model_of
from scoring_jobs.common import Services, progress, say
from toefl_core.calibration import PretestData, calibrate
from toefl_core.irt import GRID
from toefl_core.scoring import ScoredItem

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Drift:
    """One operational item's difficulty (b; the mean step of a GPCM item) as stored and as re-estimated."""

    item_id: str
    section: str
    responses: int
    stored_b: float
    estimated_b: float
    se_b: float

    @property
    def shift(self) -> float:
        return self.estimated_b - self.stored_b


@dataclass
class DriftSummary:
    threshold: float
    min_responses: int
    items: list[Drift] = field(default_factory=list)
    # Operational items answered, but fewer than min_responses times.
    too_few: int = 0

    @property
    def drifted(self) -> list[Drift]:
        return [d for d in self.items if abs(d.shift) > self.threshold]

    def describe(self) -> str:
        return (
            f"drift report: {len(self.items)} operational items re-estimated ({self.too_few} with fewer than "
            f"{self.min_responses} responses left out); {len(self.drifted)} drifted beyond +-{self.threshold:g} "
            "in difficulty"
        )


def _difficulty(irt: item_pb2.IrtParameters) -> float:
    return float(np.mean(irt.steps)) if irt.model == item_pb2.IRT_MODEL_GPCM else irt.b


def estimate_drift(
    records: Iterable[Administration],
    items: dict[str, item_pb2.Item],
    *,
    min_responses: int,
    threshold: float,
    done: Callable[[], object] | None = None,
) -> DriftSummary:
    """Each ACTIVE item with `min_responses` scored responses or more, calibrated as if it were new: its own
    responses free, every other operational response of the same sittings held at today's parameters (so it
    lands on the operational scale), by the calibration job's estimator. `done` is called after each item."""
    summary = DriftSummary(threshold=threshold, min_responses=min_responses)
    sittings: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for r in records:
        item = items.get(r.item_id)
        if r.pretest or r.score < 0 or item is None or item.irt.model not in SCORED_MODELS:
            continue
        sittings.setdefault((r.section, r.session_id), []).append((r.item_id, r.score))
    for section in sorted({key[0] for key in sittings}):
        keys = sorted(key for key in sittings if key[0] == section)
        anchor = np.zeros((len(keys), len(GRID)))
        rows: dict[str, tuple[list[int], list[int], list[Any]]] = {}
        for row, key in enumerate(keys):
            for item_id, score in sittings[key]:
                item = items[item_id]
                likelihood = ScoredItem.of(item, score).log_likelihood
                anchor[row] += likelihood
                if item.status == item_pb2.ITEM_STATUS_ACTIVE:
                    persons, scores, own = rows.setdefault(item_id, ([], [], []))
                    persons.append(row)
                    scores.append(min(score, model_of(item)[1]))
                    own.append(likelihood)
        slopes = [items[i].irt.a for i in rows]
        median_a = float(np.median(slopes)) if slopes else 1.0
        for item_id in sorted(rows):
            persons, scores, own = rows[item_id]
            if len(persons) < min_responses:
                summary.too_few += 1
                continue
            item = items[item_id]
            model, categories, fixed_c = model_of(item)
            # The sittings' likelihood without this item: the others carry the scale, this one is free.
            others = anchor[persons] - np.array(own)
            data = PretestData(
                item_id=item_id,
                model="GPCM" if model == "GPCM" else "3PL",
                categories=categories,
                persons=np.arange(len(persons), dtype=np.intp),
                scores=np.array(scores, dtype=np.intp),
                fixed_c=fixed_c,
            )
            result = calibrate(others, [data], min_responses=1, a_prior_median=median_a)
            estimate = result.estimates[0]
            summary.items.append(
                Drift(
                    item_id=item_id,
                    section=item_pb2.Section.Name(item_pb2.Section.ValueType(section)),
                    responses=len(persons),
                    stored_b=_difficulty(item.irt),
                    estimated_b=estimate.b,
                    se_b=estimate.se_b,
                )
            )
            if done is not None:
                done()
    return summary


def print_drift(summary: DriftSummary) -> None:
    say("item_id\tsection\tn\tstored b\testimated b (se)\tshift")
    for d in sorted(summary.drifted, key=lambda d: -abs(d.shift)):
        se = "nan" if math.isnan(d.se_b) else f"{d.se_b:.3f}"
        say(
            f"{d.item_id}\t{d.section}\t{d.responses}\t{d.stored_b:.3f}\t{d.estimated_b:.3f} ({se})\t"
            f"{d.shift:+.3f}"
        )


async def run_drift(services: Services, *, min_responses: int, threshold: float) -> DriftSummary:
    """Export every response, re-estimate the operational items, print those beyond the threshold. Read-only:
    a drifted item is for an author to look at (and recalibrate through review), never changed here."""
    records = await export_sittings(services, every_sitting=True)
    items = await fetch_items(services, sorted({r.item_id for r in records}))
    with progress("re-estimating", unit="item") as bar:
        summary = estimate_drift(records, items, min_responses=min_responses, threshold=threshold, done=bar.update)
    print_drift(summary)
    return summary
