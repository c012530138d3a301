"""Estimating ability (EAP) from a router module's responses, to route to the lower or upper module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from toefl_core.irt import Ability
from toefl_core.scoring import ScoredItem, is_pretest, score_answer, score_section
from toefl_core.scoring_rules import CutTable


def section_name(section: item_pb2.Section.ValueType) -> str:
    """The scoring rules' name of a section: SECTION_READING -> "reading"."""
    return item_pb2.Section.Name(section).removeprefix("SECTION_").lower()


def router_ability(
    items: Sequence[item_pb2.Item], answers: Mapping[str, pb.Answer], cut_table: CutTable
) -> Ability:
    """EAP from the objectively scored items, by the same rule as the section score (toefl_core.scoring).

    Rated tasks (writing and speaking) have no score yet at routing time and are left out, as are pretest items;
    an unanswered objective item scores 0.
    """
    scored = [
        ScoredItem.of(item, score)
        for item in items
        if not is_pretest(item) and (score := score_answer(item, answers.get(item.item_id))) is not None
    ]
    section = section_name(items[0].section) if items else "reading"
    estimate = score_section(scored, section=section, cut_table=cut_table)
    return Ability(theta=estimate.theta, se=estimate.se)
