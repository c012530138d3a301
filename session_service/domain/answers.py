"""Whether a session takes an answer (one rule for the servicer's early check and the writer's final one), and
what shape an answer to each task type must have."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from session_service.domain.proctoring import paused_error, voided_error
from session_service.domain.states import STATE_IN_PROGRESS, STATUS_EXPIRED, STATUS_OPEN
from toefl_core.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class SessionHead:
    """A session as an answer meets it: its state and its current module (none after the last one)."""

    session_id: str
    student_id: str
    state: str
    module_id: str | None
    module_sequence: int
    module_status: str
    deadline_ms: int
    # A proctor's pause (the clock stands still) and void (nothing more is taken).
    paused: bool = False
    voided: bool = False


def closed_module_error(sequence: int, status: str) -> FailedPrecondition:
    """Why a closed module refuses answers: its deadline passed (the sweep or a late call closed it), or it was
    closed by an advance or a finish."""
    if status == STATUS_EXPIRED:
        return FailedPrecondition(
            f"module {sequence}'s time is up; no more answers are accepted (earlier answers are kept)",
            reason="MODULE_TIME_UP",
        )
    return FailedPrecondition(f"module {sequence} is closed; no more answers are accepted", reason="MODULE_CLOSED")


def answer_refusal(
    head: SessionHead, *, module_id: str | None, item_id: str, in_module: bool = True
) -> FailedPrecondition | None:
    """Why the session refuses an answer to `item_id`, given in `module_id`; None when it takes it (until the
    deadline: see `too_late`). `in_module`: whether the item is one of that module's items."""
    if head.voided:
        return voided_error()
    if head.state != STATE_IN_PROGRESS:
        return FailedPrecondition(
            "the session is finished; no more answers are accepted", reason="SESSION_FINISHED"
        )
    if head.module_id is None:
        return FailedPrecondition(
            "the session has no current module; no more answers are accepted", reason="NO_CURRENT_MODULE"
        )
    # Before the deadline is looked at: a paused module's deadline is no longer its clock (see proctoring).
    if head.paused:
        return paused_error()
    if head.module_id != module_id or not in_module:
        return FailedPrecondition(f"item {item_id} is not in the current module", reason="NOT_IN_MODULE")
    if head.module_status != STATUS_OPEN:
        return closed_module_error(head.module_sequence, head.module_status)
    return None


def too_late(head: SessionHead, received_ms: int) -> bool:
    """An answer received at or after the module's deadline is refused, and the module expires with it."""
    return received_ms >= head.deadline_ms


LATE_ANSWER = "the module's time is up; the answer was not saved (earlier answers are kept)"


def late_answer_error() -> FailedPrecondition:
    """The refusal of an answer that arrived at or after its module's deadline (see `too_late`)."""
    return FailedPrecondition(LATE_ANSWER, reason="MODULE_TIME_UP")


# ---- the shape of an answer, per task type

CHOICE_TASKS = frozenset(
    {
        "TASK_TYPE_READ_IN_DAILY_LIFE",
        "TASK_TYPE_READ_ACADEMIC_PASSAGE",
        "TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE",
        "TASK_TYPE_LISTEN_TO_CONVERSATION",
        "TASK_TYPE_LISTEN_TO_ANNOUNCEMENT",
        "TASK_TYPE_LISTEN_TO_ACADEMIC_TALK",
    }
)
TEXT_TASKS = frozenset({"TASK_TYPE_WRITE_AN_EMAIL", "TASK_TYPE_ACADEMIC_DISCUSSION"})
SPEECH_TASKS = frozenset({"TASK_TYPE_LISTEN_AND_REPEAT", "TASK_TYPE_TAKE_AN_INTERVIEW"})
# What each task type accepts, by the name of the answer's field.
EXPECTED_FIELD = {
    **dict.fromkeys(CHOICE_TASKS, "choice_index"),
    "TASK_TYPE_COMPLETE_THE_WORDS": "completions",
    "TASK_TYPE_BUILD_A_SENTENCE": "word_sequence",
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


@dataclass(frozen=True)
class AnswerForm:
    """What an item takes as an answer: its task type and the bounds its content sets."""

    item_id: str
    task_type: str
    options: int = 0
    # Per slot of a Complete the Words item: how many letters are missing.
    missing_letters: tuple[int, ...] = ()
    word_bank: tuple[str, ...] = ()
    max_words: int = 0


@dataclass(frozen=True)
class GivenAnswer:
    """An answer as the student gave it: which field is set (None: none) and its value."""

    field: str | None
    choice_index: int = 0
    # The completions or the word sequence.
    values: tuple[str, ...] = ()
    text: str = ""
    audio_ref: str = ""
    transcript: str = ""
    duration_ms: int = 0


def _choice(form: AnswerForm, given: GivenAnswer) -> None:
    count = form.options
    if not 0 <= given.choice_index < count:
        raise InvalidArgument(
            f"choice_index {given.choice_index} is out of range: the item has {count} options (0..{count - 1})",
            field="answer.choice_index",
        )


def _completions(form: AnswerForm, given: GivenAnswer) -> None:
    slots, values = form.missing_letters, given.values
    if len(values) != len(slots):
        raise InvalidArgument(
            f"completions has {len(values)} entries; the item has {len(slots)} slots", field="answer.completions"
        )
    for index, (value, missing) in enumerate(zip(values, slots, strict=True)):
        # An empty entry is a slot not answered yet, so a partial answer can be saved as the student types.
        if value == "":
            continue
        if not LETTERS.fullmatch(value):
            raise InvalidArgument(f"completion {index} must be letters only", field=f"answer.completions[{index}]")
        if len(value) != missing:
            raise InvalidArgument(
                f"completion {index} has {len(value)} letters; slot {index} is missing {missing}",
                field=f"answer.completions[{index}]",
            )


def _word_sequence(form: AnswerForm, given: GivenAnswer) -> None:
    available = Counter(form.word_bank)
    for word, times in Counter(given.values).items():
        if times > available[word]:
            detail = "is not in the word bank" if available[word] == 0 else f"is given {available[word]} time(s)"
            raise InvalidArgument(
                f"word_sequence uses {word!r} {times} time(s) but it {detail}", field="answer.word_sequence"
            )


def _text(form: AnswerForm, given: GivenAnswer) -> None:
    if len(given.text) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"text is longer than {MAX_TEXT_CHARS} characters", field="answer.text")
    words = len(given.text.split())
    if form.max_words and words > form.max_words:
        raise InvalidArgument(f"text has {words} words; the limit is {form.max_words}", field="answer.text")


def _speech(given: GivenAnswer) -> None:
    if not given.audio_ref:
        raise InvalidArgument(
            "speech.audio_ref is required (a reference to the stored audio)", field="answer.speech"
        )
    if len(given.audio_ref) > MAX_AUDIO_REF_CHARS or not AUDIO_REF.fullmatch(given.audio_ref):
        raise InvalidArgument(
            f"speech.audio_ref must be a reference of at most {MAX_AUDIO_REF_CHARS} URL-safe characters",
            field="answer.speech.audio_ref",
        )
    if len(given.transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidArgument(
            f"speech.transcript is longer than {MAX_TRANSCRIPT_CHARS} characters",
            field="answer.speech.transcript",
        )
    if not 0 <= given.duration_ms <= MAX_SPEECH_MS:
        raise InvalidArgument(
            f"speech.duration_ms must be between 0 and {MAX_SPEECH_MS}", field="answer.speech.duration_ms"
        )


def check_shape(form: AnswerForm, given: GivenAnswer) -> None:
    """Raise InvalidArgument naming the problem when the answer does not fit the item's task type."""
    expected = EXPECTED_FIELD.get(form.task_type)
    if expected is None:
        raise InvalidArgument(f"item {form.item_id} has no answerable task type")
    if given.field is None:
        raise InvalidArgument(f"answer is empty; a {form.task_type} item takes {expected}")
    if given.field != expected:
        raise InvalidArgument(
            f"answer.{given.field} does not fit a {form.task_type} item; it takes {expected}",
            field=f"answer.{given.field}",
        )
    if expected == "choice_index":
        _choice(form, given)
    elif expected == "completions":
        _completions(form, given)
    elif expected == "word_sequence":
        _word_sequence(form, given)
    elif expected == "text":
        _text(form, given)
    else:
        _speech(given)
