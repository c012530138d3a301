"""Answer-shape validation per task type: what a saved answer may look like, before anything is written."""

from __future__ import annotations

import re
from collections import Counter

from toefl.item.v1 import item_pb2
from toefl.session.v1 import session_service_pb2 as pb

from toefl_core.errors import InvalidArgument

CHOICE_TASKS = frozenset(
    {
        item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE,
        item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE,
        item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE,
        item_pb2.TASK_TYPE_LISTEN_TO_CONVERSATION,
        item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT,
        item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK,
    }
)
TEXT_TASKS = frozenset({item_pb2.TASK_TYPE_WRITE_AN_EMAIL, item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION})
SPEECH_TASKS = frozenset({item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW})
# What each task type accepts, by the name of the Answer oneof field.
EXPECTED_FIELD = {
    **dict.fromkeys(CHOICE_TASKS, "choice_index"),
    item_pb2.TASK_TYPE_COMPLETE_THE_WORDS: "completions",
    item_pb2.TASK_TYPE_BUILD_A_SENTENCE: "word_sequence",
    **dict.fromkeys(TEXT_TASKS, "text"),
    **dict.fromkeys(SPEECH_TASKS, "speech"),
}
# Hard caps that hold whatever an item says: a response is never a way to store megabytes.
MAX_TEXT_CHARS = 20_000
MAX_AUDIO_REF_CHARS = 512
MAX_TRANSCRIPT_CHARS = 10_000
MAX_SPEECH_MS = 10 * 60 * 1000
LETTERS = re.compile(r"[A-Za-z]+")
AUDIO_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*")


def _choice(item: item_pb2.Item, answer: pb.Answer) -> None:
    count = len(item.content.options)
    if not 0 <= answer.choice_index < count:
        raise InvalidArgument(
            f"choice_index {answer.choice_index} is out of range: the item has {count} options (0..{count - 1})",
            field="answer.choice_index",
        )


def _completions(item: item_pb2.Item, answer: pb.Answer) -> None:
    slots = item.content.slots
    values = answer.completions.values
    if len(values) != len(slots):
        raise InvalidArgument(
            f"completions has {len(values)} entries; the item has {len(slots)} slots", field="answer.completions"
        )
    for index, (value, slot) in enumerate(zip(values, slots, strict=True)):
        # An empty entry is a slot not answered yet, so a partial answer can be saved as the student types.
        if value == "":
            continue
        if not LETTERS.fullmatch(value):
            raise InvalidArgument(f"completion {index} must be letters only", field=f"answer.completions[{index}]")
        if len(value) != slot.missing_letters:
            raise InvalidArgument(
                f"completion {index} has {len(value)} letters; slot {index} is missing {slot.missing_letters}",
                field=f"answer.completions[{index}]",
            )


def _word_sequence(item: item_pb2.Item, answer: pb.Answer) -> None:
    available = Counter(item.content.word_bank)
    used = Counter(answer.word_sequence.values)
    for word, times in used.items():
        if times > available[word]:
            detail = "is not in the word bank" if available[word] == 0 else f"is given {available[word]} time(s)"
            raise InvalidArgument(
                f"word_sequence uses {word!r} {times} time(s) but it {detail}", field="answer.word_sequence"
            )


def _text(item: item_pb2.Item, answer: pb.Answer) -> None:
    if len(answer.text) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"text is longer than {MAX_TEXT_CHARS} characters", field="answer.text")
    words = len(answer.text.split())
    if item.content.max_words and words > item.content.max_words:
        raise InvalidArgument(
            f"text has {words} words; the limit is {item.content.max_words}", field="answer.text"
        )


def _speech(answer: pb.Answer) -> None:
    speech = answer.speech
    if not speech.audio_ref:
        raise InvalidArgument(
            "speech.audio_ref is required (a reference to the stored audio)", field="answer.speech"
        )
    if len(speech.audio_ref) > MAX_AUDIO_REF_CHARS or not AUDIO_REF.fullmatch(speech.audio_ref):
        raise InvalidArgument(
            f"speech.audio_ref must be a reference of at most {MAX_AUDIO_REF_CHARS} URL-safe characters",
            field="answer.speech.audio_ref",
        )
    if len(speech.transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidArgument(
            f"speech.transcript is longer than {MAX_TRANSCRIPT_CHARS} characters",
            field="answer.speech.transcript",
        )
    if not 0 <= speech.duration_ms <= MAX_SPEECH_MS:
        raise InvalidArgument(
            f"speech.duration_ms must be between 0 and {MAX_SPEECH_MS}", field="answer.speech.duration_ms"
        )


def validate_answer(item: item_pb2.Item, answer: pb.Answer) -> None:
    """Raise InvalidArgument naming the problem when the answer does not fit the item's task type."""
    given = answer.WhichOneof("value")
    expected = EXPECTED_FIELD.get(item.task_type)
    if expected is None:
        raise InvalidArgument(f"item {item.item_id} has no answerable task type")
    if given is None:
        raise InvalidArgument(f"answer is empty; a {item_pb2.TaskType.Name(item.task_type)} item takes {expected}")
    if given != expected:
        raise InvalidArgument(
            f"answer.{given} does not fit a {item_pb2.TaskType.Name(item.task_type)} item; it takes {expected}",
            field=f"answer.{given}",
        )
    if expected == "choice_index":
        _choice(item, answer)
    elif expected == "completions":
        _completions(item, answer)
    elif expected == "word_sequence":
        _word_sequence(item, answer)
    elif expected == "text":
        _text(item, answer)
    else:
        _speech(answer)
