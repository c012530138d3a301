"""The demo item bank: counts, parameter ranges, content rules, references, QA and determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from toefl.item.v1 import item_pb2

from item_service.demo_bank import (
    AUDIO_BASE_URL,
    AUTHOR,
    DEFAULT_SEED,
    DemoBank,
    content_hash,
    generate_demo_bank,
)
from item_service.qa import (
    MULTIPLE_CHOICE_TASK_TYPES,
    PASSAGE_TASK_TYPES,
    RATED_TASK_TYPES,
    SECTION_BY_TASK_TYPE,
    qa_passed,
    run_qa_checks,
)

T = item_pb2
ALL_TASK_TYPES = sorted(SECTION_BY_TASK_TYPE)
LISTENING = {t for t, s in SECTION_BY_TASK_TYPE.items() if s == T.SECTION_LISTENING}


@pytest.fixture(scope="module")
def bank() -> DemoBank:
    return generate_demo_bank()


@pytest.fixture(scope="module")
def passages(bank: DemoBank) -> dict[str, item_pb2.Passage]:
    return {p.external_id: p for p in bank.passages}


def active(bank: DemoBank) -> list[item_pb2.Item]:
    return [i for i in bank.items if i.status == T.ITEM_STATUS_ACTIVE]


def test_active_items_cover_all_twelve_task_types(bank: DemoBank) -> None:
    per_type = Counter(i.task_type for i in active(bank))
    assert sorted(per_type) == ALL_TASK_TYPES
    assert sum(per_type.values()) == 1041
    # Enough of every type that lower and upper modules can each draw from dozens of candidates.
    standalone = {t: n for t, n in per_type.items() if t not in PASSAGE_TASK_TYPES}
    assert min(standalone.values()) >= 25
    sets = Counter(p.task_type for p in bank.passages)
    assert sorted(sets) == sorted(PASSAGE_TASK_TYPES)
    assert min(sets.values()) >= 25
    assert per_type[T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE] >= 100
    assert per_type[T.TASK_TYPE_BUILD_A_SENTENCE] >= 100


def test_other_statuses_appear_a_few_times_each(bank: DemoBank) -> None:
    statuses = Counter(i.status for i in bank.items)
    for status in (T.ITEM_STATUS_DRAFT, T.ITEM_STATUS_IN_REVIEW, T.ITEM_STATUS_APPROVED, T.ITEM_STATUS_RETIRED):
        assert 5 <= statuses[status] <= 10, T.ItemStatus.Name(status)
    assert statuses[T.ITEM_STATUS_UNSPECIFIED] == 0


def test_external_ids_are_unique_and_storage_fields_empty(bank: DemoBank) -> None:
    ids = [p.external_id for p in bank.passages] + [i.external_id for i in bank.items]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert all(p.external_id.startswith("demo-psg-") for p in bank.passages)
    assert all(not p.passage_id and not p.item_ids for p in bank.passages)
    for item in bank.items:
        assert (item.item_id, item.revision, item.etag) == ("", 0, "")
        assert not item.HasField("create_time") and not item.HasField("update_time")


def test_passage_references_resolve_and_sets_are_ordered(
    bank: DemoBank, passages: dict[str, item_pb2.Passage]
) -> None:
    positions: dict[str, list[int]] = {}
    for item in bank.items:
        if item.task_type in PASSAGE_TASK_TYPES:
            passage = passages[item.passage_id]
            assert (passage.task_type, passage.section) == (item.task_type, item.section)
            assert item.external_id.startswith(item.passage_id.replace("demo-psg-", "demo-") + "-q")
            positions.setdefault(item.passage_id, []).append(item.position)
        else:
            assert (item.passage_id, item.position) == ("", 0)
    assert sorted(positions) == sorted(passages)
    for passage_id, seen in positions.items():
        assert seen == list(range(1, len(seen) + 1)), passage_id
        expected = {
            T.TASK_TYPE_READ_IN_DAILY_LIFE: {2, 3},
            T.TASK_TYPE_READ_ACADEMIC_PASSAGE: {5},
            T.TASK_TYPE_LISTEN_TO_CONVERSATION: {2, 3},
            T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: {2, 3},
            T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: {4},
        }[passages[passage_id].task_type]
        assert len(seen) in expected


def test_everything_is_marked_as_demo_content(bank: DemoBank) -> None:
    assert all(p.demo and p.title.startswith("[Demo] ") for p in bank.passages)
    for item in bank.items:
        assert item.demo
        assert item.section == SECTION_BY_TASK_TYPE[item.task_type]
        assert item.provenance.source == T.PROVENANCE_SOURCE_DEMO
        assert item.provenance.author == AUTHOR
        assert f"seed {DEFAULT_SEED}" in item.provenance.note
        if item.HasField("rubric"):
            assert item.rubric.name.startswith("[Demo] ")


def test_dichotomous_parameters(bank: DemoBank) -> None:
    three_pl = [i for i in active(bank) if i.irt.model == T.IRT_MODEL_3PL]
    assert {i.task_type for i in three_pl} == set(MULTIPLE_CHOICE_TASK_TYPES) | {T.TASK_TYPE_BUILD_A_SENTENCE}
    a = np.array([i.irt.a for i in three_pl])
    b = np.array([i.irt.b for i in three_pl])
    assert a.min() >= 0.5 and a.max() <= 2.5
    assert abs(a.mean() - 1.2) < 0.1 and 0.15 < a.std() < 0.35
    assert abs(b.mean()) < 0.2 and 0.8 < b.std() < 1.2
    assert b.min() < -1.5 and b.max() > 1.5  # spread enough for distinct lower and upper modules
    for item in three_pl:
        assert item.irt.max_score == 1 and not item.irt.steps
        if item.task_type == T.TASK_TYPE_BUILD_A_SENTENCE:
            assert item.irt.c == 0.0
        else:
            assert 0.15 <= item.irt.c <= 0.25


def test_polytomous_parameters(bank: DemoBank) -> None:
    gpcm = [i for i in active(bank) if i.irt.model == T.IRT_MODEL_GPCM]
    assert {i.task_type for i in gpcm} == set(RATED_TASK_TYPES) | {T.TASK_TYPE_COMPLETE_THE_WORDS}
    a = np.array([i.irt.a for i in gpcm])
    assert a.min() >= 0.4 and a.max() <= 2.0 and abs(a.mean() - 1.0) < 0.1
    for item in gpcm:
        expected_max = 10 if item.task_type == T.TASK_TYPE_COMPLETE_THE_WORDS else 5
        steps = np.array(item.irt.steps)
        assert item.irt.max_score == expected_max and len(steps) == expected_max
        assert np.all(np.diff(steps) > 0), item.external_id
        assert abs(steps.mean() - item.irt.b) < 1e-3
        assert item.irt.c == 0.0


def test_multiple_choice_keys_use_every_position(bank: DemoBank) -> None:
    keys = Counter(i.answer_key.correct_option for i in active(bank) if i.task_type in MULTIPLE_CHOICE_TASK_TYPES)
    assert sorted(keys) == [0, 1, 2, 3]
    assert min(keys.values()) > 100


def test_complete_the_words_hides_the_completions(bank: DemoBank) -> None:
    for item in (i for i in bank.items if i.task_type == T.TASK_TYPE_COMPLETE_THE_WORDS):
        words = item.content.text.split()
        assert 70 <= len(words) <= 100
        assert len(item.content.slots) == len(item.answer_key.completions) == 10
        for slot, completion in zip(item.content.slots, item.answer_key.completions, strict=True):
            assert words[slot.word_index] == slot.visible_prefix + "_" * len(completion)
        assert "_" not in "".join(
            w for i, w in enumerate(words) if i not in {s.word_index for s in item.content.slots}
        )


def test_audio_and_transcripts(bank: DemoBank) -> None:
    for passage in bank.passages:
        if passage.task_type in LISTENING:
            assert passage.audio_url == f"{AUDIO_BASE_URL}{passage.external_id}.mp3"
            assert len(passage.transcript.split()) >= 40
        else:
            assert not passage.audio_url and not passage.transcript
    for item in bank.items:
        own_audio = item.task_type == T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE or item.section == T.SECTION_SPEAKING
        expected = f"{AUDIO_BASE_URL}{item.external_id}.mp3" if own_audio else ""
        assert item.content.audio_url == expected


def test_writing_and_speaking_content(bank: DemoBank) -> None:
    for item in bank.items:
        content = item.content
        if item.task_type == T.TASK_TYPE_BUILD_A_SENTENCE:
            assert 5 <= len(content.word_bank) <= 9
            assert list(content.word_bank) != list(item.answer_key.correct_sequence)
            assert sorted(content.word_bank) == sorted(item.answer_key.correct_sequence)
        elif item.task_type == T.TASK_TYPE_WRITE_AN_EMAIL:
            assert (content.min_words, content.max_words) == (80, 200)
        elif item.task_type == T.TASK_TYPE_ACADEMIC_DISCUSSION:
            assert (content.min_words, content.max_words) == (100, 250)
        elif item.task_type == T.TASK_TYPE_LISTEN_AND_REPEAT:
            assert 8 <= content.response_seconds <= 15
        elif item.task_type == T.TASK_TYPE_TAKE_AN_INTERVIEW:
            assert (content.response_seconds, content.preparation_seconds) == (45, 0)
        if item.task_type in RATED_TASK_TYPES:
            assert item.rubric.max_score == 5 and len(item.rubric.level_descriptors) == 6
            assert item.answer_key.reference_text


def test_items_of_a_type_are_distinct(bank: DemoBank) -> None:
    for task_type in (
        T.TASK_TYPE_COMPLETE_THE_WORDS,
        T.TASK_TYPE_BUILD_A_SENTENCE,
        T.TASK_TYPE_WRITE_AN_EMAIL,
        T.TASK_TYPE_ACADEMIC_DISCUSSION,
    ):
        texts = [i.content.text + " ".join(i.content.word_bank) for i in bank.items if i.task_type == task_type]
        assert len(set(texts)) == len(texts)
    repeated = [i.answer_key.reference_text for i in bank.items if i.task_type == T.TASK_TYPE_LISTEN_AND_REPEAT]
    assert len(set(repeated)) == len(repeated)
    prompts = [i.content.prompt for i in bank.items if i.task_type == T.TASK_TYPE_TAKE_AN_INTERVIEW]
    assert len(set(prompts)) == len(prompts)


def test_every_generated_item_passes_qa(bank: DemoBank, passages: dict[str, item_pb2.Passage]) -> None:
    failures = [
        (item.external_id, check.name, check.message)
        for item in bank.items
        for check in run_qa_checks(item, passages.get(item.passage_id))
        if not check.passed
    ]
    assert failures == []
    assert all(qa_passed(run_qa_checks(i, passages.get(i.passage_id))) for i in active(bank))


@pytest.mark.parametrize("seed", [0, 99, 2**40])
def test_other_seeds_also_pass_qa(seed: int) -> None:
    other = generate_demo_bank(seed)
    passages = {p.external_id: p for p in other.passages}
    assert all(qa_passed(run_qa_checks(i, passages.get(i.passage_id))) for i in other.items)
    assert all(f"seed {seed}" in i.provenance.note for i in other.items)


def test_same_seed_gives_a_byte_identical_bank(bank: DemoBank) -> None:
    again = generate_demo_bank(DEFAULT_SEED)
    assert content_hash(again) == content_hash(bank)
    assert [m.SerializeToString(deterministic=True) for m in (*again.passages, *again.items)] == [
        m.SerializeToString(deterministic=True) for m in (*bank.passages, *bank.items)
    ]


def test_different_seed_gives_a_different_bank_of_the_same_shape(bank: DemoBank) -> None:
    other = generate_demo_bank(7)
    assert content_hash(other) != content_hash(bank)
    assert Counter((i.task_type, i.status) for i in other.items) == Counter(
        (i.task_type, i.status) for i in bank.items
    )


def test_content_hash_sees_a_single_changed_field(bank: DemoBank) -> None:
    changed = DemoBank(passages=list(bank.passages), items=list(bank.items))
    item = item_pb2.Item()
    item.CopyFrom(bank.items[-1])
    item.irt.b += 0.0001
    changed.items[-1] = item
    assert content_hash(changed) != content_hash(bank)


def test_bank_does_not_depend_on_the_hash_seed(bank: DemoBank) -> None:
    # Set or dict iteration of strings would differ between these interpreters.
    code = (
        "from item_service.demo_bank import content_hash, generate_demo_bank; "
        "print(content_hash(generate_demo_bank()))"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert hashes == {content_hash(bank)}


def test_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        generate_demo_bank(-1)
