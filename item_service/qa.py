"""Automated QA checks of an item per task type, as SubmitForReview runs them (pure functions, no storage)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from toefl.item.v1 import item_pb2

from toefl_core.media import media_digest

TaskTypeValue: TypeAlias = item_pb2.TaskType.ValueType
SectionValue: TypeAlias = item_pb2.Section.ValueType

SECTION_BY_TASK_TYPE: Mapping[TaskTypeValue, SectionValue] = {
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: item_pb2.SECTION_READING,
    item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE: item_pb2.SECTION_READING,
    item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE: item_pb2.SECTION_READING,
    item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE: item_pb2.SECTION_LISTENING,
    item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION: item_pb2.SECTION_LISTENING,
    item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: item_pb2.SECTION_LISTENING,
    item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: item_pb2.SECTION_LISTENING,
    item_pb2.TASK_TYPE_BUILD_A_SENTENCE: item_pb2.SECTION_WRITING,
    item_pb2.TASK_TYPE_WRITE_AN_EMAIL: item_pb2.SECTION_WRITING,
    item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION: item_pb2.SECTION_WRITING,
    item_pb2.TASK_TYPE_LISTEN_AND_REPEAT: item_pb2.SECTION_SPEAKING,
    item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW: item_pb2.SECTION_SPEAKING,
}
# Sets: several items share one passage (a reading text or a listening stimulus).
PASSAGE_TASK_TYPES: frozenset[TaskTypeValue] = frozenset(
    {
        item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE,
        item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE,
        item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION,
        item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT,
        item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK,
    }
)
MULTIPLE_CHOICE_TASK_TYPES: frozenset[TaskTypeValue] = PASSAGE_TASK_TYPES | {
    item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE
}
# Scored 0..RATED_MAX_SCORE by raters against a rubric.
RATED_TASK_TYPES: frozenset[TaskTypeValue] = frozenset(
    {
        item_pb2.TASK_TYPE_WRITE_AN_EMAIL,
        item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION,
        item_pb2.TASK_TYPE_LISTEN_AND_REPEAT,
        item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW,
    }
)
RATED_MAX_SCORE = 5
MC_OPTION_COUNT = 4
CTW_SLOT_COUNT = 10
# GPCM max_score by task type; every other task type is a dichotomous 3PL item.
GPCM_MAX_SCORE: Mapping[TaskTypeValue, int] = {
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: CTW_SLOT_COUNT,
    **dict.fromkeys(sorted(RATED_TASK_TYPES), RATED_MAX_SCORE),
}
A_RANGE = (0.3, 3.0)
C_RANGE = (0.0, 0.35)
B_RANGE = (-4.0, 4.0)
BUILD_WORD_RANGE = (5, 9)
RESPONSE_SECONDS_RANGE: Mapping[TaskTypeValue, tuple[int, int]] = {
    item_pb2.TASK_TYPE_LISTEN_AND_REPEAT: (5, 20),
    item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW: (30, 60),
}


# Word counts (inclusive) of the text each task type bounds.
TEXT_WORD_RANGE: Mapping[TaskTypeValue, tuple[int, int]] = {
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: (70, 100),
    item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE: (20, 150),
    item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE: (150, 260),
    item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION: (60, 400),
    item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: (30, 250),
    item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: (100, 600),
    item_pb2.TASK_TYPE_BUILD_A_SENTENCE: (2, 30),
    item_pb2.TASK_TYPE_WRITE_AN_EMAIL: (10, 150),
    item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION: (30, 300),
    item_pb2.TASK_TYPE_LISTEN_AND_REPEAT: (3, 20),
}


def _passage_text(_: item_pb2.Item, passage: item_pb2.Passage | None) -> str:
    return passage.text if passage is not None else ""


def _passage_transcript(_: item_pb2.Item, passage: item_pb2.Passage | None) -> str:
    return passage.transcript if passage is not None else ""


def _item_text(item: item_pb2.Item, _: item_pb2.Passage | None) -> str:
    return item.content.text


def _item_reference(item: item_pb2.Item, _: item_pb2.Passage | None) -> str:
    return item.answer_key.reference_text


# What TEXT_WORD_RANGE measures for each task type: a label for the message and how to get the text.
_MEASURED_TEXT: Mapping[TaskTypeValue, tuple[str, Callable[[item_pb2.Item, item_pb2.Passage | None], str]]] = {
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: ("paragraph", _item_text),
    item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE: ("passage text", _passage_text),
    item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE: ("passage text", _passage_text),
    item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION: ("passage transcript", _passage_transcript),
    item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: ("passage transcript", _passage_transcript),
    item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: ("passage transcript", _passage_transcript),
    item_pb2.TASK_TYPE_BUILD_A_SENTENCE: ("context line", _item_text),
    item_pb2.TASK_TYPE_WRITE_AN_EMAIL: ("scenario", _item_text),
    item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION: ("discussion", _item_text),
    item_pb2.TASK_TYPE_LISTEN_AND_REPEAT: ("sentence to repeat", _item_reference),
}


def _enum_name(enum: Any, value: int) -> str:
    # proto3 enums are open: a client may send a number the enum does not define.
    return str(enum.Name(value)) if value in enum.values() else str(value)


def _check(name: str, passed: bool, failure: str, success: str = "ok") -> item_pb2.QaCheck:
    return item_pb2.QaCheck(name=name, passed=passed, message=success if passed else failure)


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


def _section(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    expected = SECTION_BY_TASK_TYPE.get(item.task_type)
    if expected is None:
        return _check("section_matches_task_type", False, f"unknown task type {item.task_type}")
    return _check(
        "section_matches_task_type",
        item.section == expected,
        f"{item_pb2.TaskType.Name(item.task_type)} belongs to {item_pb2.Section.Name(expected)}, "
        f"not {_enum_name(item_pb2.Section, item.section)}",
    )


def _prompt(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    return _check("prompt_present", bool(item.content.prompt.strip()), "content.prompt is empty")


def _passage(item: item_pb2.Item, passage: item_pb2.Passage | None) -> item_pb2.QaCheck:
    name = "passage_matches"
    if not item.passage_id:
        return _check(name, False, "the item belongs to a set but has no passage_id")
    if passage is None:
        return _check(name, False, f"passage {item.passage_id!r} was not found")
    if item.passage_id not in {passage.passage_id, passage.external_id} - {""}:
        return _check(name, False, f"passage_id {item.passage_id!r} does not name the passage given")
    return _check(
        name,
        passage.task_type == item.task_type and passage.section == item.section,
        f"the passage is {_enum_name(item_pb2.TaskType, passage.task_type)} in "
        f"{_enum_name(item_pb2.Section, passage.section)}, the item {item_pb2.TaskType.Name(item.task_type)}",
    )


def _options_count(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    count = len(item.content.options)
    return _check("options_count", count == MC_OPTION_COUNT, f"{count} options, expected {MC_OPTION_COUNT}")


def _options_distinct(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    normalized = [_normalized(option) for option in item.content.options]
    if "" in normalized:
        return _check("options_distinct", False, f"option {normalized.index('')} is empty")
    duplicates = sorted({option for option in normalized if normalized.count(option) > 1})
    return _check("options_distinct", not duplicates, f"options repeat (ignoring case/spaces): {duplicates}")


def _key_among_options(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    key, count = item.answer_key.correct_option, len(item.content.options)
    return _check(
        "key_among_options", 0 <= key < count, f"correct_option {key} is not an index of {count} options"
    )


def _slots_count(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    count = len(item.content.slots)
    return _check("slots_count", count == CTW_SLOT_COUNT, f"{count} damaged words, expected {CTW_SLOT_COUNT}")


def _completions_count(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    count = len(item.answer_key.completions)
    return _check("completions_count", count == CTW_SLOT_COUNT, f"{count} completions, expected {CTW_SLOT_COUNT}")


def _completions_letters(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    bad = [i for i, completion in enumerate(item.answer_key.completions) if not completion.isalpha()]
    return _check("completions_letters", not bad, f"completions {bad} are empty or not letters only")


def _slot_lengths(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    slots, completions = item.content.slots, item.answer_key.completions
    if len(slots) != len(completions):
        return _check("slot_lengths_match", False, f"{len(slots)} slots but {len(completions)} completions")
    bad = [i for i, (slot, c) in enumerate(zip(slots, completions, strict=True)) if slot.missing_letters != len(c)]
    return _check(
        "slot_lengths_match", not bad, f"slots {bad}: missing_letters differs from the completion length"
    )


def _slot_positions(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    words = item.content.text.split()
    previous = -1
    for i, slot in enumerate(item.content.slots):
        if not previous < slot.word_index < len(words):
            return _check(
                "slot_positions",
                False,
                f"slot {i}: word_index {slot.word_index} is not increasing within the {len(words)} words",
            )
        if not slot.visible_prefix or not words[slot.word_index].startswith(slot.visible_prefix):
            return _check(
                "slot_positions", False, f"slot {i}: word {slot.word_index} does not start with its visible prefix"
            )
        previous = slot.word_index
    return _check("slot_positions", True, "")


def _sequence_permutes_bank(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    sequence, bank = list(item.answer_key.correct_sequence), list(item.content.word_bank)
    return _check(
        "sequence_permutes_word_bank",
        bool(sequence) and sorted(sequence) == sorted(bank),
        "answer_key.correct_sequence is not a permutation of content.word_bank",
    )


def _word_bank_size(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    low, high = BUILD_WORD_RANGE
    count = len(item.content.word_bank)
    return _check("word_bank_size", low <= count <= high, f"{count} words in the bank, expected {low}-{high}")


def _audio_url(item: item_pb2.Item, passage: item_pb2.Passage | None) -> item_pb2.QaCheck:
    url = item.content.audio_url
    if not url and passage is not None and item.task_type in PASSAGE_TASK_TYPES:
        url = passage.audio_url
    # Whether a "sha256:" reference names a stored blob is the bank's to enforce, when the item is written.
    return _check(
        "audio_url_present",
        url.startswith(("https://", "http://")) or media_digest(url) is not None,
        "no http(s) audio URL or sha256 media reference on the item"
        + (" or its passage" if item.task_type in PASSAGE_TASK_TYPES else ""),
    )


def _text_length(item: item_pb2.Item, passage: item_pb2.Passage | None) -> item_pb2.QaCheck:
    low, high = TEXT_WORD_RANGE[item.task_type]
    label, text_of = _MEASURED_TEXT[item.task_type]
    count = len(text_of(item, passage).split())
    return _check("text_length", low <= count <= high, f"{label}: {count} words, expected {low}-{high}")


def _word_limits(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    low, high = item.content.min_words, item.content.max_words
    return _check("word_limits", 0 < low < high, f"min_words {low} / max_words {high} are not a valid range")


def _response_window(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    low, high = RESPONSE_SECONDS_RANGE[item.task_type]
    seconds = item.content.response_seconds
    return _check(
        "response_window",
        low <= seconds <= high and item.content.preparation_seconds >= 0,
        f"response_seconds {seconds} outside {low}-{high} or negative preparation time",
    )


def _reference_text(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    return _check(
        "reference_text_present",
        bool(item.answer_key.reference_text.strip()),
        "answer_key.reference_text is empty",
    )


def _rubric(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    rubric = item.rubric
    problems = []
    if rubric.max_score != RATED_MAX_SCORE:
        problems.append(f"max_score {rubric.max_score}, expected {RATED_MAX_SCORE}")
    if not rubric.dimensions:
        problems.append("no dimensions")
    if len(rubric.level_descriptors) != rubric.max_score + 1:
        problems.append(f"{len(rubric.level_descriptors)} level descriptors for scores 0-{rubric.max_score}")
    return _check("rubric_valid", not problems, "rubric: " + "; ".join(problems))


def _irt_model(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    expected = item_pb2.IRT_MODEL_GPCM if item.task_type in GPCM_MAX_SCORE else item_pb2.IRT_MODEL_3PL
    return _check(
        "irt_model",
        item.irt.model == expected,
        f"IRT model {_enum_name(item_pb2.IrtModel, item.irt.model)} is not {item_pb2.IrtModel.Name(expected)}",
    )


def _in_range(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


def _irt_parameters(item: item_pb2.Item, _: item_pb2.Passage | None) -> item_pb2.QaCheck:
    irt = item.irt
    problems = []
    if not _in_range(irt.a, A_RANGE):
        problems.append(f"a={irt.a} outside {A_RANGE}")
    if not _in_range(irt.b, B_RANGE):
        problems.append(f"b={irt.b} outside {B_RANGE}")
    max_score = GPCM_MAX_SCORE.get(item.task_type)
    if max_score is None:
        if not _in_range(irt.c, C_RANGE):
            problems.append(f"c={irt.c} outside {C_RANGE}")
        if irt.max_score != 1:
            problems.append(f"max_score {irt.max_score}, expected 1")
    else:
        if irt.max_score != max_score:
            problems.append(f"max_score {irt.max_score}, expected {max_score}")
        if len(irt.steps) != irt.max_score:
            problems.append(f"{len(irt.steps)} steps for max_score {irt.max_score}")
        if not all(_in_range(step, (-2 * B_RANGE[1], 2 * B_RANGE[1])) for step in irt.steps):
            problems.append("a step is not finite or far out of range")
    return _check("irt_parameters", not problems, "; ".join(problems))


Check = Callable[[item_pb2.Item, item_pb2.Passage | None], item_pb2.QaCheck]
_COMMON: tuple[Check, ...] = (_section, _prompt, _irt_model, _irt_parameters)
_MULTIPLE_CHOICE: tuple[Check, ...] = (_options_count, _options_distinct, _key_among_options)
_CHECKS_BY_TASK_TYPE: Mapping[TaskTypeValue, tuple[Check, ...]] = {
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: (
        _slots_count,
        _completions_count,
        _completions_letters,
        _slot_lengths,
        _slot_positions,
        _text_length,
    ),
    item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE: (_passage, *_MULTIPLE_CHOICE, _text_length),
    item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE: (_passage, *_MULTIPLE_CHOICE, _text_length),
    item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE: (*_MULTIPLE_CHOICE, _audio_url),
    item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION: (_passage, *_MULTIPLE_CHOICE, _audio_url, _text_length),
    item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: (_passage, *_MULTIPLE_CHOICE, _audio_url, _text_length),
    item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: (_passage, *_MULTIPLE_CHOICE, _audio_url, _text_length),
    item_pb2.TASK_TYPE_BUILD_A_SENTENCE: (_sequence_permutes_bank, _word_bank_size, _text_length),
    item_pb2.TASK_TYPE_WRITE_AN_EMAIL: (_text_length, _word_limits, _reference_text, _rubric),
    item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION: (_text_length, _word_limits, _reference_text, _rubric),
    item_pb2.TASK_TYPE_LISTEN_AND_REPEAT: (_audio_url, _text_length, _response_window, _reference_text, _rubric),
    item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW: (_audio_url, _response_window, _reference_text, _rubric),
}


def run_qa_checks(item: item_pb2.Item, passage: item_pb2.Passage | None) -> list[item_pb2.QaCheck]:
    """Run every automated check that applies to the item's task type.

    `passage` is the item's passage when it has one (the set's text or the listening stimulus), else None. An
    unknown task type gets only the common checks, and fails the section check.
    """
    specific = _CHECKS_BY_TASK_TYPE.get(item.task_type)
    checks = (_section, _prompt) if specific is None else (*_COMMON, *specific)
    return [check(item, passage) for check in checks]


def qa_passed(checks: Sequence[item_pb2.QaCheck]) -> bool:
    """True when there was at least one check and every check passed."""
    return bool(checks) and all(check.passed for check in checks)
