"""Module assembly: whole passages or single items chosen by information at a target, with randomesque draws."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
# The pretest slots' draws come from a second stream of the module's seed.
PRETEST_STREAM = 1


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
    # The same for the PRETEST items, which fill only pretest slots.
    pretest_pools: dict[int, TaskPool] = field(default_factory=dict)
    pretest_unit_by_item: dict[str, tuple[int, int]] = field(default_factory=dict)


def _pools(members: Iterable[item_pb2.Item]) -> tuple[dict[int, TaskPool], dict[str, tuple[int, int]]]:
    """Group items into units per task type and precompute their IRT parameters as arrays."""
    by_task: dict[int, list[item_pb2.Item]] = {}
    for item in members:
        by_task.setdefault(item.task_type, []).append(item)
    pools: dict[int, TaskPool] = {}
    unit_by_item: dict[str, tuple[int, int]] = {}
    for task_type, task_items in by_task.items():
        grouped: dict[str, list[item_pb2.Item]] = {}
        for item in task_items:
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
    return pools, unit_by_item


def build_index(
    active_items: Iterable[item_pb2.Item], pretest_items: Iterable[item_pb2.Item] = ()
) -> AssemblyIndex:
    """Group the active (and the pretest) items into units per task type, ready for assembly."""
    active = list(active_items)
    pretest = list(pretest_items)
    pools, unit_by_item = _pools(active)
    pretest_pools, pretest_unit_by_item = _pools(pretest)
    return AssemblyIndex(
        pools=pools,
        items={item.item_id: item for item in (*active, *pretest)},
        unit_by_item=unit_by_item,
        pretest_pools=pretest_pools,
        pretest_unit_by_item=pretest_unit_by_item,
    )


def check_spec(spec: item_service_pb2.ModuleSpec) -> None:
    """INVALID_ARGUMENT naming the field of a spec that cannot be assembled as written."""
    if spec.section not in item_pb2.Section.DESCRIPTOR.values_by_number:
        raise InvalidArgument(f"spec.section: unknown Section value {spec.section}", field="spec.section")
    if not spec.task_counts:
        raise InvalidArgument("spec.task_counts must name at least one task type", field="spec.task_counts")
    for field_name, counts in (("task_counts", spec.task_counts), ("pretest_counts", spec.pretest_counts)):
        for index, task_count in enumerate(counts):
            _check_task_count(spec, task_count, f"spec.{field_name}[{index}]")
    if not math.isfinite(spec.difficulty_target) or abs(spec.difficulty_target) > 6:
        raise InvalidArgument("spec.difficulty_target must lie in [-6, 6]", field="spec.difficulty_target")
    if spec.randomesque_k < 0:
        raise InvalidArgument("spec.randomesque_k must not be negative", field="spec.randomesque_k")


def _check_task_count(
    spec: item_service_pb2.ModuleSpec, task_count: item_service_pb2.TaskCount, path: str
) -> None:
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


@dataclass
class Assembly:
    items: list[item_pb2.Item]
    passage_ids: list[str]
    record: item_service_pb2.AssemblyRecord


def _blocked_units(unit_by_item: dict[str, tuple[int, int]], excluded_ids: set[str]) -> dict[int, set[int]]:
    blocked: dict[int, set[int]] = {}
    for item_id in excluded_ids:
        location = unit_by_item.get(item_id)
        if location is not None:
            blocked.setdefault(location[0], set()).add(location[1])
    return blocked


def assemble(
    index: AssemblyIndex,
    *,
    spec: item_service_pb2.ModuleSpec,
    exclude: Iterable[str],
    seed: int,
    pretest_administrations: Mapping[str, int] | None = None,
) -> Assembly:
    """Fill each task count with whole units, drawing among the best k by information at the target.

    A passage-based count is filled by whole passages: units that fit the remaining count are preferred, and only
    when none fits may the last passage overshoot it. Pretest slots follow (see _fill_pretest); they draw from a
    stream of their own, so that the operational items a seed gives are the same with or without them.
    """
    check_spec(spec)
    k = spec.randomesque_k or DEFAULT_RANDOMESQUE_K
    # Same seed, same draws: a session replays its assembly from the record.
    rng = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF)
    pretest_rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, PRETEST_STREAM])
    excluded_ids = set(exclude)
    blocked = _blocked_units(index.unit_by_item, excluded_ids)
    record = item_service_pb2.AssemblyRecord(seed=seed, spec=spec, excluded_count=len(excluded_ids))
    pretest_slots: dict[int, int] = {}
    for task_count in spec.pretest_counts:
        pretest_slots[task_count.task_type] = pretest_slots.get(task_count.task_type, 0) + task_count.count
    pretest_blocked = _blocked_units(index.pretest_unit_by_item, excluded_ids)
    administrations = pretest_administrations or {}
    blocks: list[list[tuple[str, ...]]] = []
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
        block: list[tuple[str, ...]] = []
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
            block.append(unit.item_ids)
        blocks.append(block)
    # Pretest units join the block of their task type (a block of their own when the module has none of it).
    by_task: dict[int, list[tuple[str, ...]]] = {
        task_count.task_type: block for task_count, block in zip(spec.task_counts, blocks, strict=True)
    }
    for task_type, slots in pretest_slots.items():
        if task_type not in by_task:
            by_task[task_type] = []
            blocks.append(by_task[task_type])
        block = by_task[task_type]
        _fill_pretest(
            index,
            task_type=task_type,
            slots=slots,
            block=block,
            blocked=pretest_blocked.get(task_type, set()),
            administrations=administrations,
            rng=pretest_rng,
            record=record,
        )
    chosen_items = [index.items[item_id] for block in blocks for unit_ids in block for item_id in unit_ids]
    passage_ids = list(dict.fromkeys(item.passage_id for item in chosen_items if item.passage_id))
    return Assembly(items=chosen_items, passage_ids=passage_ids, record=record)


def _fill_pretest(
    index: AssemblyIndex,
    *,
    task_type: int,
    slots: int,
    block: list[tuple[str, ...]],
    blocked: set[int],
    administrations: Mapping[str, int],
    rng: np.random.Generator,
    record: item_service_pb2.AssemblyRecord,
) -> None:
    """Fill up to `slots` items with whole pretest units that fit, the least administered first (ties drawn by the
    seed), each at a drawn place in its task type's block so that its position tells the student nothing.

    Best effort: a pool too small (or a passage too long for the slots) leaves slots empty rather than failing the
    module, since the pretest items are not the student's test.
    """
    pool = index.pretest_pools.get(task_type)
    if pool is None:
        return
    in_module = {index.items[unit_ids[0]].passage_id for unit_ids in block}
    counts = np.array(
        [min(int(administrations.get(item_id, 0)) for item_id in unit.item_ids) for unit in pool.units],
        dtype=np.int64,
    )
    available = np.array(
        [
            i not in blocked and not (unit.passage_id and unit.passage_id in in_module)
            for i, unit in enumerate(pool.units)
        ],
        dtype=bool,
    )
    filled = 0
    while filled < slots:
        candidates = np.flatnonzero(available & (pool.sizes <= slots - filled))
        if candidates.size == 0:
            return
        least = candidates[counts[candidates] == counts[candidates].min()]
        pick = int(least[rng.integers(least.size)])
        unit = pool.units[pick]
        record.steps.add(
            task_type=task_type,
            chosen=unit.unit_id,
            candidates=[pool.units[i].unit_id for i in least],
            pretest=True,
            administrations=int(counts[pick]),
        )
        available[pick] = False
        filled += len(unit.item_ids)
        block.insert(int(rng.integers(len(block) + 1)), unit.item_ids)
