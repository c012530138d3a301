"""Scoring a router module's responses and estimating ability (EAP) to route to the lower or upper module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from toefl_core.irt import Ability, PolytomousResponse, eap


def completion_score(item: item_pb2.Item, answer: pb.Answer | None) -> int:
    """Complete the Words: the number of slots completed correctly (case does not matter)."""
    if answer is None or answer.WhichOneof("value") != "completions":
        return 0
    keys = item.answer_key.completions
    return sum(
        1 for given, key in zip(answer.completions.values, keys, strict=False) if given.lower() == key.lower()
    )


def is_correct(item: item_pb2.Item, answer: pb.Answer | None) -> bool:
    """Right or wrong for an objective item; an unanswered item is wrong."""
    if answer is None:
        return False
    kind = answer.WhichOneof("value")
    if kind == "choice_index":
        return answer.choice_index == item.answer_key.correct_option
    if kind == "word_sequence":
        return list(answer.word_sequence.values) == list(item.answer_key.correct_sequence)
    if kind == "completions":
        return completion_score(item, answer) == len(item.answer_key.completions) > 0
    return False


def router_ability(items: Sequence[item_pb2.Item], answers: Mapping[str, pb.Answer]) -> Ability:
    """EAP from the objectively scored items: 3PL ones right/wrong, GPCM Complete the Words by partial credit.

    Rated tasks (writing and speaking) have no score yet at routing time and are left out.
    """
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    u: list[int] = []
    polytomous: list[PolytomousResponse] = []
    for item in items:
        answer = answers.get(item.item_id)
        if item.irt.model == item_pb2.IRT_MODEL_3PL:
            a.append(item.irt.a)
            b.append(item.irt.b)
            c.append(item.irt.c)
            u.append(int(is_correct(item, answer)))
        elif item.irt.model == item_pb2.IRT_MODEL_GPCM and item.task_type == item_pb2.TASK_TYPE_COMPLETE_THE_WORDS:
            steps = tuple(item.irt.steps)
            score = min(completion_score(item, answer), len(steps))
            polytomous.append(PolytomousResponse(a=item.irt.a, steps=steps, score=score))
    return eap(a=a, b=b, c=c, u=u, polytomous=polytomous)
