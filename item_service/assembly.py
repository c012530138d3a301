"""Module assembly: whole passages or single items chosen by information at a target, with randomesque draws."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from toefl.item.v1 import item_pb2, item_service_pb2

from item_service.qa import SECTION_BY_TASK_TYPE
from toefl_core.errors import FailedPrecondition, InvalidArgument
from toefl_core.irt import info_3pl, info_gpcm, select_randomesque

DEFAULT_RANDOMESQUE_K = 5
# Module targets come from a small blueprint table, so a few memoised targets per task type cover them all.
MAX_MEMOISED_TARGETS = 64


@dataclass(frozen=True)
class Unit:
    """What is chosen in one step: a whole passage (its active items, in order) or one standalone item."""

    unit_id: str
    passage_id: str
    item_ids: tuple[str, ...]


@dataclass
class TaskPool:
    """The active items of one task type, as arrays ready for information at any theta."""

    task_type: int
    units: list[Unit]
    unit_of_item: NDArray[np.intp]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    c: NDArray[np.float64]
    # GPCM items: (item index, a, steps); their entries in a/b/c are zero so the 3PL part adds nothing.
    polytomous: list[tuple[int, float, NDArray[np.float64]]]
    sizes: NDArray[np.intp]
    _memo: dict[float, NDArray[np.float64]] = field(default_factory=dict)

    def information(self, theta: float) -> NDArray[np.float64]:
        """Information of each unit at theta: the sum over its items."""
        cached = self._memo.get(theta)
        if cached is not None:
            return cached
        per_item = info_3pl(theta, self.a, self.b, self.c)
        for index, slope, steps in self.polytomous:
            per_item[index] = float(info_gpcm(theta, slope, steps)[0])
        per_unit = np.bincount(self.unit_of_item, weights=per_item, minlength=len(self.units)).astype(np.float64)
        if len(self._memo) < MAX_MEMOISED_TARGETS:
            self._memo[theta] = per_unit
        return per_unit


@dataclass
class AssemblyIndex:
    pools: dict[int, TaskPool]
    items: dict[str, item_pb2.Item]
    # item id -> (task type, unit index), to turn excluded items into excluded units.
    unit_by_item: dict[str, tuple[int, int]]


def build_index(active_items: Iterable[item_pb2.Item]) -> AssemblyIndex:
    """Group the active items into units per task type and precompute their IRT parameters as arrays."""
    by_task: dict[int, list[item_pb2.Item]] = {}
    items: dict[str, item_pb2.Item] = {}
    for item in active_items:
        by_task.setdefault(item.task_type, []).append(item)
        items[item.item_id] = item
    pools: dict[int, TaskPool] = {}
    unit_by_item: dict[str, tuple[int, int]] = {}
    for task_type, members in by_task.items():
        grouped: dict[str, list[item_pb2.Item]] = {}
        for item in members:
            grouped.setdefault(item.passage_id or item.item_id, []).append(item)
        units: list[Unit] = []
        ordered: list[item_pb2.Item] = []
        for unit_id in sorted(grouped):
            group = sorted(grouped[unit_id], key=lambda it: (it.position, it.item_id))
            units.append(Unit(unit_id, group[0].passage_id, tuple(it.item_id for it in group)))
            ordered.extend(group)
            for it in group:
                unit_by_item[it.item_id] = (task_type, len(units) - 1)
        unit_of_item = np.array([unit_by_item[it.item_id][1] for it in ordered], dtype=np.intp)
        a, b, c = np.zeros(len(ordered)), np.zeros(len(ordered)), np.zeros(len(ordered))
        polytomous: list[tuple[int, float, NDArray[np.float64]]] = []
        for index, it in enumerate(ordered):
            if not it.HasField("irt"):
                continue
            if it.irt.model == item_pb2.IRT_MODEL_GPCM and len(it.irt.steps) > 0:
                polytomous.append((index, it.irt.a, np.array(it.irt.steps, dtype=np.float64)))
            else:
                a[index], b[index], c[index] = it.irt.a, it.irt.b, it.irt.c
        sizes = np.array([len(unit.item_ids) for unit in units], dtype=np.intp)
        pools[task_type] = TaskPool(task_type, units, unit_of_item, a, b, c, polytomous, sizes)
    return AssemblyIndex(pools=pools, items=items, unit_by_item=unit_by_item)


def check_spec(spec: item_service_pb2.ModuleSpec) -> None:
    """INVALID_ARGUMENT naming the field of a spec that cannot be assembled as written."""
    if spec.section not in item_pb2.Section.DESCRIPTOR.values_by_number:
        raise InvalidArgument(f"spec.section: unknown Section value {spec.section}", field="spec.section")
    if not spec.task_counts:
        raise InvalidArgument("spec.task_counts must name at least one task type", field="spec.task_counts")
    for index, task_count in enumerate(spec.task_counts):
        path = f"spec.task_counts[{index}]"
        if task_count.task_type not in SECTION_BY_TASK_TYPE:
            raise InvalidArgument(f"{path}.task_type: unknown or unset task type", field=f"{path}.task_type")
        if spec.section and SECTION_BY_TASK_TYPE[task_count.task_type] != spec.section:
            raise InvalidArgument(
                f"{path}.task_type {item_pb2.TaskType.Name(task_count.task_type)} is not in section "
                f"{item_pb2.Section.Name(spec.section)}",
                field=f"{path}.task_type",
            )
        if task_count.count < 1:
            raise InvalidArgument(f"{path}.count must be at least 1", field=f"{path}.count")
    if not math.isfinite(spec.difficulty_target) or abs(spec.difficulty_target) > 6:
        raise InvalidArgument("spec.difficulty_target must lie in [-6, 6]", field="spec.difficulty_target")
    if spec.randomesque_k < 0:
        raise InvalidArgument("spec.randomesque_k must not be negative", field="spec.randomesque_k")


@dataclass
class Assembly:
    items: list[item_pb2.Item]
    passage_ids: list[str]
    record: item_service_pb2.AssemblyRecord


def assemble(
    index: AssemblyIndex, *, spec: item_service_pb2.ModuleSpec, exclude: Iterable[str], seed: int
) -> Assembly:
    """Fill each task count with whole units, drawing among the best k by information at the target.

    A passage-based count is filled by whole passages: units that fit the remaining count are preferred, and only
    when none fits may the last passage overshoot it.
    """
    check_spec(spec)
    k = spec.randomesque_k or DEFAULT_RANDOMESQUE_K
    # Same seed, same draws: a session replays its assembly from the record.
    rng = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF)
    excluded_ids = set(exclude)
    blocked: dict[int, set[int]] = {}
    for item_id in excluded_ids:
        location = index.unit_by_item.get(item_id)
        if location is not None:
            blocked.setdefault(location[0], set()).add(location[1])
    record = item_service_pb2.AssemblyRecord(seed=seed, spec=spec, excluded_count=len(excluded_ids))
    chosen_items: list[item_pb2.Item] = []
    passage_ids: list[str] = []
    for task_count in spec.task_counts:
        name = item_pb2.TaskType.Name(task_count.task_type)
        pool = index.pools.get(task_count.task_type)
        if pool is None:
            raise FailedPrecondition(f"no active {name} items in the bank", reason="ITEM_POOL_EXHAUSTED")
        information = pool.information(spec.difficulty_target)
        available = np.ones(len(pool.units), dtype=bool)
        for unit_index in blocked.get(task_count.task_type, ()):
            available[unit_index] = False
        filled = 0
        while filled < task_count.count:
            remaining = task_count.count - filled
            candidates = np.flatnonzero(available & (pool.sizes <= remaining))
            if candidates.size == 0:
                candidates = np.flatnonzero(available)
            if candidates.size == 0:
                raise FailedPrecondition(
                    f"ran out of {name}: {filled} of {task_count.count} items filled after "
                    f"{len(excluded_ids)} exclusions; the bank needs more active {name} items",
                    reason="ITEM_POOL_EXHAUSTED",
                )
            candidate_info = information[candidates]
            pick = candidates[select_randomesque(candidate_info, k, rng)]
            best = candidates[np.argsort(-candidate_info, kind="stable")[: min(k, candidates.size)]]
            unit = pool.units[pick]
            record.steps.add(
                task_type=task_count.task_type,
                chosen=unit.unit_id,
                candidates=[pool.units[i].unit_id for i in best],
                information=[float(information[i]) for i in best],
            )
            available[pick] = False
            filled += len(unit.item_ids)
            chosen_items.extend(index.items[item_id] for item_id in unit.item_ids)
            if unit.passage_id:
                passage_ids.append(unit.passage_id)
    return Assembly(items=chosen_items, passage_ids=passage_ids, record=record)
