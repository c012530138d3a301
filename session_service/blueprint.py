"""The exam blueprint as versioned data: sections, modules, task counts, time limits and the routing rule."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import session_service_pb2 as pb

from session_service.domain.routing import RoutingRule

BLUEPRINT_DIR = Path(__file__).resolve().parent / "blueprints"
CURRENT_VERSION = "toefl2026-v3"
SECTION_ORDER = (
    item_pb2.SECTION_READING,
    item_pb2.SECTION_LISTENING,
    item_pb2.SECTION_WRITING,
    item_pb2.SECTION_SPEAKING,
)


class BlueprintError(Exception):
    """A blueprint file is missing or malformed."""


@dataclass(frozen=True)
class ModulePlan:
    key: str
    section: item_pb2.Section.ValueType
    stage: pb.ModuleStage.ValueType
    time_limit_seconds: int
    difficulty_target: float
    randomesque_k: int
    task_counts: tuple[tuple[item_pb2.TaskType.ValueType, int], ...]
    # Unscored pretest slots (an optional "pretest_slots" in the file; none before toefl2026-v3).
    pretest_counts: tuple[tuple[item_pb2.TaskType.ValueType, int], ...] = ()

    def spec(self) -> item_service_pb2.ModuleSpec:
        return item_service_pb2.ModuleSpec(
            section=self.section,
            task_counts=[item_service_pb2.TaskCount(task_type=t, count=c) for t, c in self.task_counts],
            difficulty_target=self.difficulty_target,
            randomesque_k=self.randomesque_k,
            pretest_counts=[item_service_pb2.TaskCount(task_type=t, count=c) for t, c in self.pretest_counts],
        )


@dataclass(frozen=True)
class SectionPlan:
    section: item_pb2.Section.ValueType
    modules: tuple[ModulePlan, ...]
    routing: RoutingRule | None

    @property
    def adaptive(self) -> bool:
        return self.routing is not None

    def first(self) -> ModulePlan:
        return self.modules[0]

    def stage(self, stage: pb.ModuleStage.ValueType) -> ModulePlan:
        for plan in self.modules:
            if plan.stage == stage:
                return plan
        raise BlueprintError(f"section {item_pb2.Section.Name(self.section)} has no {pb.ModuleStage.Name(stage)}")


@dataclass(frozen=True)
class Blueprint:
    version: str
    sections: tuple[SectionPlan, ...]

    def section(self, section: item_pb2.Section.ValueType) -> SectionPlan:
        for plan in self.sections:
            if plan.section == section:
                return plan
        raise BlueprintError(f"blueprint {self.version} has no section {item_pb2.Section.Name(section)}")

    def module(self, key: str) -> ModulePlan:
        for section in self.sections:
            for plan in section.modules:
                if plan.key == key:
                    return plan
        raise BlueprintError(f"blueprint {self.version} has no module {key!r}")

    def sections_for(self, section: item_pb2.Section.ValueType | None) -> tuple[SectionPlan, ...]:
        """The sections a session takes: all of them in test order, or the one chosen."""
        return self.sections if section is None else (self.section(section),)

    def routing_after(self, plan: ModulePlan) -> RoutingRule | None:
        """The rule that picks the module after `plan` from its score: that of its section when `plan` is the
        router of an adaptive section; None when what follows does not depend on a score."""
        routing = self.section(plan.section).routing
        return routing if plan.stage == pb.MODULE_STAGE_ROUTER else None

    def after(self, plan: ModulePlan, taken: tuple[SectionPlan, ...]) -> tuple[ModulePlan, ...]:
        """The modules that may follow `plan` in a session taking the sections `taken`: a router's second stages
        (which one, its score decides), else the next section's first module; none after the last."""
        if self.routing_after(plan) is not None:
            section = self.section(plan.section)
            return tuple(p for p in section.modules if p.stage != pb.MODULE_STAGE_ROUTER)
        index = [s.section for s in taken].index(plan.section)
        return (taken[index + 1].first(),) if index + 1 < len(taken) else ()


def _counts(raw: list[dict[str, Any]]) -> tuple[tuple[item_pb2.TaskType.ValueType, int], ...]:
    return tuple((item_pb2.TaskType.Value(c["task_type"]), int(c["count"])) for c in raw)


def _module(raw: dict[str, Any], section: item_pb2.Section.ValueType) -> ModulePlan:
    counts = _counts(raw["task_counts"])
    if not counts or any(count <= 0 for _, count in counts):
        raise BlueprintError(f"module {raw['key']!r} needs positive task counts")
    pretest = _counts(raw.get("pretest_slots", []))
    if any(count <= 0 for _, count in pretest):
        raise BlueprintError(f"module {raw['key']!r} needs positive pretest slot counts")
    return ModulePlan(
        key=str(raw["key"]),
        section=section,
        stage=pb.ModuleStage.Value(raw["stage"]),
        time_limit_seconds=int(raw["time_limit_seconds"]),
        difficulty_target=float(raw["difficulty_target"]),
        randomesque_k=int(raw.get("randomesque_k", 0)),
        task_counts=counts,
        pretest_counts=pretest,
    )


def parse_blueprint(raw: dict[str, Any]) -> Blueprint:
    try:
        sections = []
        for raw_section in raw["sections"]:
            section = item_pb2.Section.Value(raw_section["section"])
            modules = tuple(_module(m, section) for m in raw_section["modules"])
            routing_raw = raw_section.get("routing")
            routing = RoutingRule(str(routing_raw["rule"]), float(routing_raw["cut"])) if routing_raw else None
            stages = [m.stage for m in modules]
            expected = (
                [pb.MODULE_STAGE_ROUTER, pb.MODULE_STAGE_LOWER, pb.MODULE_STAGE_UPPER]
                if routing
                else [pb.MODULE_STAGE_LINEAR]
            )
            if stages != expected:
                raise BlueprintError(f"section {raw_section['section']}: modules must be {expected}, not {stages}")
            if routing is not None and routing.rule != "theta_cut":
                raise BlueprintError(f"unknown routing rule {routing.rule!r}")
            sections.append(SectionPlan(section=section, modules=modules, routing=routing))
    except (KeyError, ValueError, TypeError) as exc:
        raise BlueprintError(f"malformed blueprint: {exc}") from exc
    order = [s.section for s in sections]
    if order != [s for s in SECTION_ORDER if s in order]:
        raise BlueprintError("sections must be in the order Reading, Listening, Writing, Speaking")
    return Blueprint(version=str(raw["version"]), sections=tuple(sections))


@functools.cache
def known_versions() -> frozenset[str]:
    """The blueprint versions there are (what a sitting may name)."""
    return frozenset(path.stem for path in BLUEPRINT_DIR.glob("*.json"))


@functools.cache
def load_blueprint(version: str = CURRENT_VERSION) -> Blueprint:
    """The blueprint of `version`, read once per process: its file ships with the code, so a new one comes with
    a restart (every advance and start asks for it)."""
    path = BLUEPRINT_DIR / f"{version}.json"
    if not path.is_file():
        raise BlueprintError(f"no blueprint {version!r} in {BLUEPRINT_DIR}")
    blueprint = parse_blueprint(json.loads(path.read_text()))
    if blueprint.version != version:
        raise BlueprintError(f"{path.name} declares version {blueprint.version!r}")
    return blueprint
