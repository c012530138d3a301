"""The drift report: an operational item whose live responses say it became harder is reported; the items that
kept their difficulty are not."""

from __future__ import annotations

import numpy as np
from toefl.item.v1 import item_pb2

from scoring_jobs.calibrate import Administration
from scoring_jobs.drift import estimate_drift
from toefl_core.irt import prob_3pl

ITEMS = 25
SITTINGS = 600
SHIFT = 1.0


def test_a_drifted_item_is_reported_and_the_steady_ones_are_not() -> None:
    rng = np.random.default_rng(4)
    items = {}
    true_b = {}
    for number in range(ITEMS):
        item_id = f"op-{number}"
        irt = item_pb2.IrtParameters(
            model=item_pb2.IRT_MODEL_3PL, a=float(rng.uniform(0.9, 1.6)), b=float(rng.normal()), c=0.2, max_score=1
        )
        items[item_id] = item_pb2.Item(
            item_id=item_id, section=item_pb2.SECTION_READING, status=item_pb2.ITEM_STATUS_ACTIVE, irt=irt
        )
        # The first item became harder since it was calibrated: students answer it a logit harder.
        true_b[item_id] = irt.b + (SHIFT if number == 0 else 0.0)
    theta = rng.standard_normal(SITTINGS)
    records = [
        Administration(
            f"ses-{person}",
            item_pb2.SECTION_READING,
            item_id,
            int(rng.random() < prob_3pl(theta[person], item.irt.a, true_b[item_id], item.irt.c)),
            False,
        )
        for person in range(SITTINGS)
        for item_id, item in items.items()
    ]
    summary = estimate_drift(records, items, min_responses=SITTINGS, threshold=0.5)
    assert len(summary.items) == ITEMS and summary.too_few == 0
    assert [d.item_id for d in summary.drifted] == ["op-0"], summary.drifted
    drifted = summary.drifted[0]
    assert abs(drifted.shift - SHIFT) < 3 * drifted.se_b and drifted.responses == SITTINGS
    assert "1 drifted beyond +-0.5" in summary.describe()
    fewer = estimate_drift(records, items, min_responses=SITTINGS + 1, threshold=0.5)
    assert fewer.items == [] and fewer.too_few == ITEMS
