"""Automated QA checks: sound items pass, and every check fails on an item broken in its way."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from toefl.item.v1 import item_pb2

from item_service.demo_bank import DemoBank, generate_demo_bank
from item_service.qa import SECTION_BY_TASK_TYPE, qa_passed, run_qa_checks

T = item_pb2
Passage = item_pb2.Passage | None


@dataclass(frozen=True)
class Sample:
    item: item_pb2.Item
    passage: Passage

    def copy(self) -> tuple[item_pb2.Item, Passage]:
        item = item_pb2.Item()
        item.CopyFrom(self.item)
        if self.passage is None:
            return item, None
        passage = item_pb2.Passage()
        passage.CopyFrom(self.passage)
        return item, passage


@pytest.fixture(scope="module")
def bank() -> DemoBank:
    return generate_demo_bank()


@pytest.fixture(scope="module")
def samples(bank: DemoBank) -> dict[int, Sample]:
    """One sound ACTIVE item of every task type, with its passage."""
    passages = {p.external_id: p for p in bank.passages}
    found: dict[int, Sample] = {}
    for item in bank.items:
        if item.status == T.ITEM_STATUS_ACTIVE and item.task_type not in found:
            found[item.task_type] = Sample(item, passages.get(item.passage_id))
    assert sorted(found) == sorted(SECTION_BY_TASK_TYPE)
    return found


def names(checks: list[item_pb2.QaCheck]) -> list[str]:
    return [c.name for c in checks]


def test_sound_items_pass_every_check(samples: dict[int, Sample]) -> None:
    for sample in samples.values():
        checks = run_qa_checks(sample.item, sample.passage)
        assert qa_passed(checks), [c for c in checks if not c.passed]
        assert len(set(names(checks))) == len(checks), T.TaskType.Name(sample.item.task_type)
        assert {"section_matches_task_type", "prompt_present", "irt_model", "irt_parameters"} <= set(names(checks))


@pytest.mark.parametrize(
    ("task_type", "expected"),
    [
        (
            T.TASK_TYPE_COMPLETE_THE_WORDS,
            {"slots_count", "completions_count", "completions_letters", "text_length"},
        ),
        (
            T.TASK_TYPE_READ_ACADEMIC_PASSAGE,
            {"passage_matches", "options_count", "key_among_options", "text_length"},
        ),
        (T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, {"options_distinct", "audio_url_present"}),
        (T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK, {"passage_matches", "audio_url_present", "text_length"}),
        (T.TASK_TYPE_BUILD_A_SENTENCE, {"sequence_permutes_word_bank", "word_bank_size"}),
        (T.TASK_TYPE_WRITE_AN_EMAIL, {"rubric_valid", "word_limits", "reference_text_present"}),
        (T.TASK_TYPE_TAKE_AN_INTERVIEW, {"rubric_valid", "audio_url_present", "response_window"}),
    ],
)
def test_each_task_type_runs_its_own_checks(
    samples: dict[int, Sample], task_type: int, expected: set[str]
) -> None:
    sample = samples[task_type]
    assert expected <= set(names(run_qa_checks(sample.item, sample.passage)))


def test_a_passage_named_by_its_storage_id_is_accepted(samples: dict[int, Sample]) -> None:
    item, passage = samples[T.TASK_TYPE_LISTEN_TO_CONVERSATION].copy()
    assert passage is not None
    item.passage_id = passage.passage_id = "psg-000042"
    assert qa_passed(run_qa_checks(item, passage))


Breaker = Callable[[item_pb2.Item, Passage], Passage]


def _set(**changes: object) -> Breaker:
    """Sets dotted fields of the item (e.g. content.prompt) and keeps the passage."""

    def breaker(item: item_pb2.Item, passage: Passage) -> Passage:
        for path, value in changes.items():
            *parents, leaf = path.split("__")
            target: object = item
            for parent in parents:
                target = getattr(target, parent)
            setattr(target, leaf, value)
        return passage

    return breaker


def _no_passage(item: item_pb2.Item, passage: Passage) -> Passage:
    return None


def _other_passage_kind(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.task_type = T.TASK_TYPE_READ_IN_DAILY_LIFE
    return passage


def _foreign_passage(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.external_id = "demo-psg-rd-acad-9999"
    return passage


def _drop_option(item: item_pb2.Item, passage: Passage) -> Passage:
    del item.content.options[-1]
    item.answer_key.correct_option = 0
    return passage


def _repeat_option(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.options[1] = f"  {item.content.options[0].upper()}  "
    return passage


def _blank_option(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.options[2] = " "
    return passage


def _drop_slot(item: item_pb2.Item, passage: Passage) -> Passage:
    del item.content.slots[-1]
    return passage


def _drop_completion(item: item_pb2.Item, passage: Passage) -> Passage:
    del item.answer_key.completions[-1]
    return passage


def _digit_completion(item: item_pb2.Item, passage: Passage) -> Passage:
    item.answer_key.completions[0] = "9" * len(item.answer_key.completions[0])
    return passage


def _longer_slot(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.slots[2].missing_letters += 1
    return passage


def _swap_slot_order(item: item_pb2.Item, passage: Passage) -> Passage:
    first, second = item.content.slots[0], item.content.slots[1]
    first.word_index, second.word_index = second.word_index, first.word_index
    first.visible_prefix, second.visible_prefix = second.visible_prefix, first.visible_prefix
    return passage


def _slot_beyond_text(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.slots[-1].word_index = len(item.content.text.split())
    return passage


def _wrong_prefix(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.slots[3].visible_prefix = "zq"
    return passage


def _longer_paragraph(item: item_pb2.Item, passage: Passage) -> Passage:
    item.content.text += " and more" * 20
    return passage


def _wrong_word_in_sequence(item: item_pb2.Item, passage: Passage) -> Passage:
    item.answer_key.correct_sequence[0] = "banana"
    return passage


def _four_word_bank(item: item_pb2.Item, passage: Passage) -> Passage:
    words = list(item.answer_key.correct_sequence[:4])
    del item.content.word_bank[:]
    item.content.word_bank.extend(reversed(words))
    del item.answer_key.correct_sequence[:]
    item.answer_key.correct_sequence.extend(words)
    return passage


def _passage_without_audio(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.audio_url = ""
    return passage


def _short_passage(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.text = " ".join(passage.text.split()[:100])
    return passage


def _long_notice(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.text += " Please read this notice again." * 30
    return passage


def _no_transcript(item: item_pb2.Item, passage: Passage) -> Passage:
    assert passage is not None
    passage.transcript = ""
    return passage


def _clear_rubric(item: item_pb2.Item, passage: Passage) -> Passage:
    item.ClearField("rubric")
    return passage


def _drop_descriptor(item: item_pb2.Item, passage: Passage) -> Passage:
    del item.rubric.level_descriptors[-1]
    return passage


def _drop_step(item: item_pb2.Item, passage: Passage) -> Passage:
    del item.irt.steps[-1]
    return passage


BROKEN: list[tuple[str, int, Breaker, str]] = [
    (
        "wrong section",
        T.TASK_TYPE_COMPLETE_THE_WORDS,
        _set(section=T.SECTION_WRITING),
        "section_matches_task_type",
    ),
    (
        "no section",
        T.TASK_TYPE_TAKE_AN_INTERVIEW,
        _set(section=T.SECTION_UNSPECIFIED),
        "section_matches_task_type",
    ),
    ("unknown section number", T.TASK_TYPE_BUILD_A_SENTENCE, _set(section=42), "section_matches_task_type"),
    ("blank prompt", T.TASK_TYPE_READ_IN_DAILY_LIFE, _set(content__prompt="  \n"), "prompt_present"),
    ("blank prompt", T.TASK_TYPE_TAKE_AN_INTERVIEW, _set(content__prompt=""), "prompt_present"),
    ("passage missing", T.TASK_TYPE_READ_ACADEMIC_PASSAGE, _no_passage, "passage_matches"),
    ("no passage id", T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT, _set(passage_id=""), "passage_matches"),
    ("passage of another id", T.TASK_TYPE_READ_ACADEMIC_PASSAGE, _foreign_passage, "passage_matches"),
    ("passage of another type", T.TASK_TYPE_READ_ACADEMIC_PASSAGE, _other_passage_kind, "passage_matches"),
    ("three options", T.TASK_TYPE_LISTEN_TO_CONVERSATION, _drop_option, "options_count"),
    ("repeated option", T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, _repeat_option, "options_distinct"),
    ("blank option", T.TASK_TYPE_READ_IN_DAILY_LIFE, _blank_option, "options_distinct"),
    (
        "key past the end",
        T.TASK_TYPE_READ_ACADEMIC_PASSAGE,
        _set(answer_key__correct_option=4),
        "key_among_options",
    ),
    (
        "negative key",
        T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK,
        _set(answer_key__correct_option=-1),
        "key_among_options",
    ),
    ("nine slots", T.TASK_TYPE_COMPLETE_THE_WORDS, _drop_slot, "slots_count"),
    ("nine completions", T.TASK_TYPE_COMPLETE_THE_WORDS, _drop_completion, "completions_count"),
    ("digits", T.TASK_TYPE_COMPLETE_THE_WORDS, _digit_completion, "completions_letters"),
    ("slot length", T.TASK_TYPE_COMPLETE_THE_WORDS, _longer_slot, "slot_lengths_match"),
    ("slot count mismatch", T.TASK_TYPE_COMPLETE_THE_WORDS, _drop_completion, "slot_lengths_match"),
    ("slots out of order", T.TASK_TYPE_COMPLETE_THE_WORDS, _swap_slot_order, "slot_positions"),
    ("slot beyond the text", T.TASK_TYPE_COMPLETE_THE_WORDS, _slot_beyond_text, "slot_positions"),
    ("prefix not in text", T.TASK_TYPE_COMPLETE_THE_WORDS, _wrong_prefix, "slot_positions"),
    ("paragraph too long", T.TASK_TYPE_COMPLETE_THE_WORDS, _longer_paragraph, "text_length"),
    ("foreign word", T.TASK_TYPE_BUILD_A_SENTENCE, _wrong_word_in_sequence, "sequence_permutes_word_bank"),
    ("four words", T.TASK_TYPE_BUILD_A_SENTENCE, _four_word_bank, "word_bank_size"),
    ("no audio", T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, _set(content__audio_url=""), "audio_url_present"),
    ("passage without audio", T.TASK_TYPE_LISTEN_TO_CONVERSATION, _passage_without_audio, "audio_url_present"),
    (
        "not a web url",
        T.TASK_TYPE_LISTEN_AND_REPEAT,
        _set(content__audio_url="file:///x.mp3"),
        "audio_url_present",
    ),
    ("no audio", T.TASK_TYPE_TAKE_AN_INTERVIEW, _set(content__audio_url=""), "audio_url_present"),
    ("short academic passage", T.TASK_TYPE_READ_ACADEMIC_PASSAGE, _short_passage, "text_length"),
    ("long daily-life text", T.TASK_TYPE_READ_IN_DAILY_LIFE, _long_notice, "text_length"),
    ("no transcript", T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK, _no_transcript, "text_length"),
    ("no scenario", T.TASK_TYPE_WRITE_AN_EMAIL, _set(content__text=""), "text_length"),
    (
        "long sentence to repeat",
        T.TASK_TYPE_LISTEN_AND_REPEAT,
        _set(answer_key__reference_text="word " * 30),
        "text_length",
    ),
    ("no word limits", T.TASK_TYPE_WRITE_AN_EMAIL, _set(content__min_words=0), "word_limits"),
    ("inverted word limits", T.TASK_TYPE_ACADEMIC_DISCUSSION, _set(content__max_words=50), "word_limits"),
    ("long answer window", T.TASK_TYPE_TAKE_AN_INTERVIEW, _set(content__response_seconds=120), "response_window"),
    ("no answer window", T.TASK_TYPE_LISTEN_AND_REPEAT, _set(content__response_seconds=0), "response_window"),
    (
        "no exemplar",
        T.TASK_TYPE_ACADEMIC_DISCUSSION,
        _set(answer_key__reference_text=" "),
        "reference_text_present",
    ),
    ("no rubric", T.TASK_TYPE_WRITE_AN_EMAIL, _clear_rubric, "rubric_valid"),
    ("rubric out of 4", T.TASK_TYPE_TAKE_AN_INTERVIEW, _set(rubric__max_score=4), "rubric_valid"),
    ("missing level", T.TASK_TYPE_LISTEN_AND_REPEAT, _drop_descriptor, "rubric_valid"),
    ("GPCM for a choice item", T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT, _set(irt__model=T.IRT_MODEL_GPCM), "irt_model"),
    ("3PL for a rated task", T.TASK_TYPE_WRITE_AN_EMAIL, _set(irt__model=T.IRT_MODEL_3PL), "irt_model"),
    ("3PL for Complete the Words", T.TASK_TYPE_COMPLETE_THE_WORDS, _set(irt__model=T.IRT_MODEL_3PL), "irt_model"),
    ("steep a", T.TASK_TYPE_READ_IN_DAILY_LIFE, _set(irt__a=3.5), "irt_parameters"),
    ("flat a", T.TASK_TYPE_TAKE_AN_INTERVIEW, _set(irt__a=0.1), "irt_parameters"),
    ("high c", T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, _set(irt__c=0.5), "irt_parameters"),
    ("negative c", T.TASK_TYPE_BUILD_A_SENTENCE, _set(irt__c=-0.1), "irt_parameters"),
    ("b not a number", T.TASK_TYPE_READ_ACADEMIC_PASSAGE, _set(irt__b=math.nan), "irt_parameters"),
    ("dichotomous max 2", T.TASK_TYPE_LISTEN_TO_CONVERSATION, _set(irt__max_score=2), "irt_parameters"),
    ("rated max 4", T.TASK_TYPE_ACADEMIC_DISCUSSION, _set(irt__max_score=4), "irt_parameters"),
    ("testlet max 5", T.TASK_TYPE_COMPLETE_THE_WORDS, _set(irt__max_score=5), "irt_parameters"),
    ("missing step", T.TASK_TYPE_LISTEN_AND_REPEAT, _drop_step, "irt_parameters"),
]


@pytest.mark.parametrize(
    ("task_type", "breaker", "check_name"),
    [pytest.param(t, b, n, id=f"{n}-{label}") for label, t, b, n in BROKEN],
)
def test_a_broken_item_fails_its_check(
    samples: dict[int, Sample], task_type: int, breaker: Breaker, check_name: str
) -> None:
    item, passage = samples[task_type].copy()
    checks = run_qa_checks(item, breaker(item, passage))
    failed = {c.name: c.message for c in checks if not c.passed}
    assert check_name in failed
    assert failed[check_name] and failed[check_name] != "ok"
    assert not qa_passed(checks)


def test_every_check_has_a_failing_case(samples: dict[int, Sample]) -> None:
    every_name = {c.name for s in samples.values() for c in run_qa_checks(s.item, s.passage)}
    assert every_name == {name for *_, name in BROKEN}


def test_unknown_task_type_fails_the_section_check(samples: dict[int, Sample]) -> None:
    item, _ = samples[T.TASK_TYPE_BUILD_A_SENTENCE].copy()
    item.task_type = T.TASK_TYPE_UNSPECIFIED
    checks = run_qa_checks(item, None)
    assert names(checks) == ["section_matches_task_type", "prompt_present"]
    assert not checks[0].passed and "unknown task type" in checks[0].message
    assert not qa_passed(checks)


def test_qa_passed_needs_at_least_one_check_and_no_failure() -> None:
    ok = item_pb2.QaCheck(name="a", passed=True, message="ok")
    bad = item_pb2.QaCheck(name="b", passed=False, message="broken")
    assert qa_passed([ok, ok])
    assert not qa_passed([ok, bad])
    assert not qa_passed([])
