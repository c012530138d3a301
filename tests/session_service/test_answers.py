"""Answer shapes per task type (the domain's rule, on items and answers as the converters read them): the right
shape is accepted, every wrong one is refused naming the problem; an answer is stored as json_format writes it."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from session_service.convert import answer_form, answer_json, given_answer
from session_service.domain.answers import EXPECTED_FIELD, MAX_TEXT_CHARS, check_shape
from toefl_core.errors import InvalidArgument

T = item_pb2


def validate_answer(item: item_pb2.Item, answer: pb.Answer) -> None:
    check_shape(answer_form(item), given_answer(answer))


def _item(task_type: int, **content: object) -> item_pb2.Item:
    return item_pb2.Item(item_id="itm-1", task_type=task_type, content=item_pb2.ItemContent(**content))  # type: ignore[arg-type]


CHOICE = _item(T.TASK_TYPE_READ_ACADEMIC_PASSAGE, options=["a", "b", "c", "d"])
CTW = _item(
    T.TASK_TYPE_COMPLETE_THE_WORDS,
    slots=[
        item_pb2.CompletionSlot(word_index=1, visible_prefix="ho", missing_letters=3),
        item_pb2.CompletionSlot(word_index=4, visible_prefix="t", missing_letters=2),
    ],
)
BAS = _item(T.TASK_TYPE_BUILD_A_SENTENCE, word_bank=["the", "cat", "sat", "the"])
EMAIL = _item(T.TASK_TYPE_WRITE_AN_EMAIL, max_words=5)
SPEAK = _item(T.TASK_TYPE_TAKE_AN_INTERVIEW)


@pytest.mark.parametrize(
    ("item", "answer"),
    [
        (CHOICE, pb.Answer(choice_index=0)),
        (CHOICE, pb.Answer(choice_index=3)),
        (CTW, pb.Answer(completions=pb.StringList(values=["use", "wo"]))),
        (CTW, pb.Answer(completions=pb.StringList(values=["", "wo"]))),
        (BAS, pb.Answer(word_sequence=pb.StringList(values=["the", "cat", "sat", "the"]))),
        (BAS, pb.Answer(word_sequence=pb.StringList(values=["cat"]))),
        (EMAIL, pb.Answer(text="Dear Sam, thanks a lot")),
        (SPEAK, pb.Answer(speech=pb.SpeechResponse(audio_ref="audio/ses-1/itm-1.webm", transcript="hi"))),
    ],
)
def test_right_shapes_pass(item: item_pb2.Item, answer: pb.Answer) -> None:
    validate_answer(item, answer)


@pytest.mark.parametrize(
    ("item", "answer", "problem"),
    [
        (CHOICE, pb.Answer(), "answer is empty"),
        (CHOICE, pb.Answer(choice_index=4), "out of range"),
        (CHOICE, pb.Answer(choice_index=-1), "out of range"),
        (CHOICE, pb.Answer(text="b"), "does not fit"),
        (CTW, pb.Answer(completions=pb.StringList(values=["use"])), "2 slots"),
        (CTW, pb.Answer(completions=pb.StringList(values=["us", "wo"])), "missing 3"),
        (CTW, pb.Answer(completions=pb.StringList(values=["u3e", "wo"])), "letters only"),
        (BAS, pb.Answer(word_sequence=pb.StringList(values=["dog"])), "not in the word bank"),
        (BAS, pb.Answer(word_sequence=pb.StringList(values=["cat", "cat"])), "given 1 time"),
        (EMAIL, pb.Answer(text="one two three four five six"), "the limit is 5"),
        (EMAIL, pb.Answer(text="x" * (MAX_TEXT_CHARS + 1)), "longer than"),
        (SPEAK, pb.Answer(speech=pb.SpeechResponse()), "audio_ref is required"),
        (SPEAK, pb.Answer(speech=pb.SpeechResponse(audio_ref="a b")), "URL-safe"),
        (SPEAK, pb.Answer(speech=pb.SpeechResponse(audio_ref="a" * 600)), "URL-safe"),
        (SPEAK, pb.Answer(speech=pb.SpeechResponse(audio_ref="a", duration_ms=-1)), "duration_ms"),
    ],
)
def test_wrong_shapes_are_refused_naming_the_problem(item: item_pb2.Item, answer: pb.Answer, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        validate_answer(item, answer)


def test_every_task_type_has_an_answer_shape() -> None:
    answerable = set(EXPECTED_FIELD)
    assert answerable == {item_pb2.TaskType.Name(v) for v in item_pb2.TaskType.values()} - {
        "TASK_TYPE_UNSPECIFIED"
    }


_INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
_WORDS = st.lists(st.text(max_size=12), max_size=5)
ANSWERS = st.one_of(
    st.just(pb.Answer()),
    _INT32.map(lambda i: pb.Answer(choice_index=i)),
    st.text(max_size=80).map(lambda t: pb.Answer(text=t)),
    _WORDS.map(lambda words: pb.Answer(completions=pb.StringList(values=words))),
    _WORDS.map(lambda words: pb.Answer(word_sequence=pb.StringList(values=words))),
    st.builds(
        lambda ref, transcript, ms: pb.Answer(
            speech=pb.SpeechResponse(audio_ref=ref, transcript=transcript, duration_ms=ms)
        ),
        st.text(max_size=20),
        st.text(max_size=40),
        _INT32,
    ),
)


@given(ANSWERS)
def test_an_answer_is_stored_exactly_as_json_format_writes_it(answer: pb.Answer) -> None:
    assert answer_json(answer) == json_format.MessageToJson(answer, indent=None)


def test_an_items_form_is_read_once_per_item_object() -> None:
    assert answer_form(CHOICE) is answer_form(CHOICE)
    # Another item object with the same id (another revision, another task type) has a form of its own.
    other = _item(T.TASK_TYPE_COMPLETE_THE_WORDS, slots=CTW.content.slots)
    assert other.item_id == CHOICE.item_id and answer_form(other).task_type == "TASK_TYPE_COMPLETE_THE_WORDS"
    assert answer_form(CHOICE).task_type == "TASK_TYPE_READ_ACADEMIC_PASSAGE" and answer_form(CHOICE).options == 4
