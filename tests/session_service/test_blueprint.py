"""The blueprint as data: the shipped one loads, routes by its rule, and malformed ones are refused."""

from __future__ import annotations

import json

import pytest
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from session_service.blueprint import (
    BLUEPRINT_DIR,
    CURRENT_VERSION,
    BlueprintError,
    load_blueprint,
    parse_blueprint,
)


def test_the_shipped_blueprint_has_four_sections_in_order_with_adaptive_reading_and_listening() -> None:
    blueprint = load_blueprint(CURRENT_VERSION)
    assert [s.section for s in blueprint.sections] == [
        item_pb2.SECTION_READING,
        item_pb2.SECTION_LISTENING,
        item_pb2.SECTION_WRITING,
        item_pb2.SECTION_SPEAKING,
    ]
    assert [s.adaptive for s in blueprint.sections] == [True, True, False, False]
    minutes = {
        s.section: sum(m.time_limit_seconds for m in s.modules if m.stage != pb.MODULE_STAGE_UPPER) / 60
        for s in blueprint.sections
    }
    assert minutes == {
        item_pb2.SECTION_READING: 30,
        item_pb2.SECTION_LISTENING: 29,
        item_pb2.SECTION_WRITING: 23,
        item_pb2.SECTION_SPEAKING: 8,
    }


def test_routing_rule_sends_theta_at_or_above_the_cut_upper() -> None:
    rule = load_blueprint().section(item_pb2.SECTION_READING).routing
    assert rule is not None
    assert rule.route(rule.cut)[0] == pb.ModuleStage.Name(pb.MODULE_STAGE_UPPER)
    assert rule.route(rule.cut - 0.01)[0] == pb.ModuleStage.Name(pb.MODULE_STAGE_LOWER)
    assert "-> lower" in rule.route(-2.0)[1]


def test_after_a_module_come_its_routers_second_stages_or_the_next_sections_first_module() -> None:
    blueprint = load_blueprint()
    whole = blueprint.sections_for(None)
    reading, listening, writing, speaking = whole
    router = reading.first()
    assert [p.stage for p in blueprint.after(router, whole)] == [pb.MODULE_STAGE_LOWER, pb.MODULE_STAGE_UPPER]
    for second in blueprint.after(router, whole):
        assert blueprint.after(second, whole) == (listening.first(),)
    assert blueprint.after(writing.first(), whole) == (speaking.first(),)
    assert blueprint.after(speaking.modules[-1], whole) == ()
    # A session of one section ends with it.
    only_reading = blueprint.sections_for(item_pb2.SECTION_READING)
    assert blueprint.after(reading.stage(pb.MODULE_STAGE_UPPER), only_reading) == ()


def _raw() -> dict[str, object]:
    data: dict[str, object] = json.loads((BLUEPRINT_DIR / f"{CURRENT_VERSION}.json").read_text())
    return data


def test_sections_out_of_order_are_refused() -> None:
    raw = _raw()
    raw["sections"] = list(reversed(raw["sections"]))  # type: ignore[call-overload]
    with pytest.raises(BlueprintError, match="order"):
        parse_blueprint(raw)


def test_an_unknown_task_type_is_refused() -> None:
    raw = _raw()
    raw["sections"][0]["modules"][0]["task_counts"][0]["task_type"] = "TASK_TYPE_NOPE"  # type: ignore[index]
    with pytest.raises(BlueprintError, match="malformed"):
        parse_blueprint(raw)


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(BlueprintError, match="no blueprint"):
        load_blueprint("toefl1999")


def test_the_short_form_has_every_task_type_in_the_modules_everyone_takes() -> None:
    """The browser tests' whole test (SESSION_BLUEPRINT): each task type of the current blueprint, in a router or a
    linear module, so that whichever way the routing goes, a student meets every one."""

    def task_types(version: str, *, taken_by_all: bool) -> set[int]:
        return {
            task_type
            for section in load_blueprint(version).sections
            for plan in section.modules
            if not taken_by_all or plan.stage in (pb.MODULE_STAGE_ROUTER, pb.MODULE_STAGE_LINEAR)
            for task_type, _ in plan.task_counts
        }

    assert task_types("toefl2026-short-v1", taken_by_all=True) == task_types(CURRENT_VERSION, taken_by_all=False)
    assert len(task_types(CURRENT_VERSION, taken_by_all=False)) == 12
