"""Deterministic generator of the synthetic demo item bank (all 12 task types), from a seed."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from toefl.item.v1 import item_pb2

from item_service import demo_text as txt
from item_service.qa import (
    CTW_SLOT_COUNT,
    MC_OPTION_COUNT,
    RATED_MAX_SCORE,
    SECTION_BY_TASK_TYPE,
    TEXT_WORD_RANGE,
    TaskTypeValue,
)

DEFAULT_SEED = 2026
AUTHOR = "demo-bank-generator"
# Where the audio of the unvoiced bank would be: replaced by the bank's own blobs when it is voiced.
AUDIO_BASE_URL = "https://cdn.example.invalid/demo-audio/"
DEMO_TITLE_PREFIX = "[Demo] "

T = item_pb2
# Active items per standalone task type.
STANDALONE_ACTIVE: Mapping[TaskTypeValue, int] = {
    T.TASK_TYPE_COMPLETE_THE_WORDS: 85,
    T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE: 130,
    T.TASK_TYPE_BUILD_A_SENTENCE: 110,
    T.TASK_TYPE_WRITE_AN_EMAIL: 25,
    T.TASK_TYPE_ACADEMIC_DISCUSSION: 25,
    T.TASK_TYPE_LISTEN_AND_REPEAT: 64,
    T.TASK_TYPE_TAKE_AN_INTERVIEW: 40,
}
# Active passage sets per task type: the question count of each set (shuffled by the seed, so totals are fixed).
SET_SIZES: Mapping[TaskTypeValue, tuple[int, ...]] = {
    T.TASK_TYPE_READ_IN_DAILY_LIFE: (3,) * 30 + (2,) * 30,
    T.TASK_TYPE_READ_ACADEMIC_PASSAGE: (5,) * 30,
    T.TASK_TYPE_LISTEN_TO_CONVERSATION: (3,) * 17 + (2,) * 18,
    T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: (3,) * 15 + (2,) * 15,
    T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: (4,) * 25,
}
# Items in other states of the life cycle, spread over the standalone task types in turn.
EXTRA_STATUSES: tuple[tuple[item_pb2.ItemStatus.ValueType, int], ...] = (
    (T.ITEM_STATUS_DRAFT, 8),
    (T.ITEM_STATUS_IN_REVIEW, 7),
    (T.ITEM_STATUS_APPROVED, 6),
    (T.ITEM_STATUS_RETIRED, 8),
)
# Short codes in external ids, e.g. "demo-rd-acad-0007-q3".
CODES: Mapping[TaskTypeValue, str] = {
    T.TASK_TYPE_COMPLETE_THE_WORDS: "rd-ctw",
    T.TASK_TYPE_READ_IN_DAILY_LIFE: "rd-daily",
    T.TASK_TYPE_READ_ACADEMIC_PASSAGE: "rd-acad",
    T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE: "ls-resp",
    T.TASK_TYPE_LISTEN_TO_CONVERSATION: "ls-conv",
    T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: "ls-ann",
    T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: "ls-talk",
    T.TASK_TYPE_BUILD_A_SENTENCE: "wr-bas",
    T.TASK_TYPE_WRITE_AN_EMAIL: "wr-email",
    T.TASK_TYPE_ACADEMIC_DISCUSSION: "wr-disc",
    T.TASK_TYPE_LISTEN_AND_REPEAT: "sp-repeat",
    T.TASK_TYPE_TAKE_AN_INTERVIEW: "sp-interview",
}
EMAIL_WORDS = (80, 200)
DISCUSSION_WORDS = (100, 250)
INTERVIEW_SECONDS = 45
# Slots every template may use; a name ending in "2" draws a second, different value of the same list.
COMMON_SLOTS: Mapping[str, tuple[str, ...]] = {
    "day": txt.DAYS,
    "time": txt.TIMES,
    "early": txt.EARLY_TIMES,
    "late": txt.LATE_TIMES,
    "price": txt.PRICES,
    "first": txt.FIRST_NAMES,
    "student": txt.FIRST_NAMES,
    "last": txt.LAST_NAMES,
}


@dataclass(frozen=True)
class DemoBank:
    """The generated bank. Items name their passage by the passage's external_id; storage assigns real ids.

    Its audio_urls are placeholders until `demo_audio.add_prompt_audio` voices them into `media`.
    """

    passages: list[item_pb2.Passage]
    items: list[item_pb2.Item]
    media: list[item_pb2.Media] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class _Parts:
    """What a standalone item maker writes; the writer adds ids, status and provenance."""

    content: item_pb2.ItemContent
    answer_key: item_pb2.AnswerKey
    irt: item_pb2.IrtParameters
    rubric: item_pb2.Rubric | None = None


@dataclass(frozen=True)
class _Stimulus:
    """The passage of a set: a reading text, or a listening stimulus (text = what the student is told)."""

    title: str
    text: str
    transcript: str = ""


# A question of a set: (prompt, the correct value, the distractor pool, option pattern).
Question = tuple[str, str, Sequence[str], str]
V = TypeVar("V")


def _words(text: str) -> int:
    return len(text.split())


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


class _Writer:
    """Writes the items of one task type from its own random stream, so task types do not disturb each other."""

    def __init__(self, seed: int, task_type: TaskTypeValue) -> None:
        self.seed = seed
        self.task_type = task_type
        self.section = SECTION_BY_TASK_TYPE[task_type]
        self.rng = np.random.default_rng([seed, int(task_type)])

    def pick(self, values: Sequence[str]) -> str:
        return values[int(self.rng.integers(len(values)))]

    def shuffled(self, values: Sequence[str]) -> list[str]:
        return [values[int(i)] for i in self.rng.permutation(len(values))]

    def fill(self, slots: Mapping[str, Sequence[str]], names: Sequence[str]) -> dict[str, str]:
        """Draws a value for each slot name; "x2" differs from "x"."""
        values: dict[str, str] = {}
        for name in names:
            if name.endswith("2"):
                base = name[:-1]
                values[name] = self.pick([v for v in slots[base] if v != values[base]])
            else:
                values[name] = self.pick(slots[name])
        return values

    def options(self, correct: str, pool: Sequence[str], pattern: str = "{}") -> tuple[list[str], int]:
        """Four options: the correct one and three distinct distractors from `pool`, in a random order."""
        correct_text = _capitalize(pattern.format(correct))
        seen = {correct_text.casefold()}
        distractors: list[str] = []
        for value in self.shuffled(pool):
            option = _capitalize(pattern.format(value))
            if option.casefold() not in seen:
                seen.add(option.casefold())
                distractors.append(option)
            if len(distractors) == MC_OPTION_COUNT - 1:
                break
        if len(distractors) < MC_OPTION_COUNT - 1:
            raise ValueError(f"too few distinct distractors for {correct!r}")
        key = int(self.rng.integers(MC_OPTION_COUNT))
        distractors.insert(key, correct_text)
        return distractors, key

    def irt_3pl(self, *, guessing: bool) -> item_pb2.IrtParameters:
        a = np.clip(self.rng.normal(1.2, 0.25), 0.5, 2.5)
        b = np.clip(self.rng.normal(0.0, 1.0), -3.0, 3.0)
        c = self.rng.uniform(0.15, 0.25) if guessing else 0.0
        return T.IrtParameters(model=T.IRT_MODEL_3PL, a=_round(a), b=_round(b), c=_round(c, 3), max_score=1)

    def irt_gpcm(self, max_score: int) -> item_pb2.IrtParameters:
        a = np.clip(self.rng.normal(1.0, 0.2), 0.4, 2.0)
        b = np.clip(self.rng.normal(0.0, 1.0), -3.0, 3.0)
        # Evenly spaced steps around b; the jitter stays below half the spacing, so the steps keep increasing.
        half_width = 1.5 if max_score <= RATED_MAX_SCORE else 2.0
        offsets = np.linspace(-half_width, half_width, max_score)
        spacing = 2 * half_width / (max_score - 1)
        steps = offsets + self.rng.uniform(-0.2 * spacing, 0.2 * spacing, max_score)
        steps = b + steps - steps.mean()
        return T.IrtParameters(
            model=T.IRT_MODEL_GPCM, a=_round(a), b=_round(b), steps=[_round(s) for s in steps], max_score=max_score
        )

    def provenance(self) -> item_pb2.Provenance:
        return T.Provenance(
            source=T.PROVENANCE_SOURCE_DEMO,
            author=AUTHOR,
            note=f"Synthetic demo content, not real test material; generated with seed {self.seed}.",
        )

    def item(
        self,
        external_id: str,
        status: item_pb2.ItemStatus.ValueType,
        parts: _Parts,
        *,
        passage_id: str = "",
        position: int = 0,
    ) -> item_pb2.Item:
        return T.Item(
            external_id=external_id,
            section=self.section,
            task_type=self.task_type,
            status=status,
            passage_id=passage_id,
            position=position,
            content=parts.content,
            answer_key=parts.answer_key,
            irt=parts.irt,
            rubric=parts.rubric,
            provenance=self.provenance(),
            demo=True,
        )


def _external_id(task_type: TaskTypeValue, number: int) -> str:
    return f"demo-{CODES[task_type]}-{number:04d}"


def _audio_url(external_id: str) -> str:
    return f"{AUDIO_BASE_URL}{external_id}.mp3"


def _rubric(name: str, dimensions: Sequence[tuple[str, str]]) -> item_pb2.Rubric:
    return T.Rubric(
        name=f"{DEMO_TITLE_PREFIX}{name}",
        max_score=RATED_MAX_SCORE,
        dimensions=[T.RubricDimension(name=n, description=d) for n, d in dimensions],
        level_descriptors=txt.RUBRIC_LEVELS,
    )


RUBRICS: Mapping[TaskTypeValue, item_pb2.Rubric] = {
    T.TASK_TYPE_WRITE_AN_EMAIL: _rubric(
        "Write an Email",
        (
            ("Task completion", "All three requested points are addressed and developed."),
            ("Organization", "Ideas follow a clear order with appropriate connections."),
            ("Language use", "Grammar and vocabulary are accurate and varied."),
            ("Register", "Tone and conventions suit the recipient."),
        ),
    ),
    T.TASK_TYPE_ACADEMIC_DISCUSSION: _rubric(
        "Academic Discussion",
        (
            ("Contribution", "The post states an opinion and adds to the discussion."),
            ("Elaboration", "Reasons, examples and details support the opinion."),
            ("Language use", "Grammar and vocabulary are accurate and varied."),
        ),
    ),
    T.TASK_TYPE_LISTEN_AND_REPEAT: _rubric(
        "Listen and Repeat",
        (
            ("Accuracy", "The sentence is repeated completely and exactly."),
            ("Pronunciation", "Sounds, stress and intonation are clear."),
            ("Fluency", "The sentence is spoken at a natural pace without long pauses."),
        ),
    ),
    T.TASK_TYPE_TAKE_AN_INTERVIEW: _rubric(
        "Take an Interview",
        (
            ("Delivery", "Speech is clear and fluid, with natural pacing."),
            ("Language use", "Grammar and vocabulary are effective and accurate."),
            ("Topic development", "The answer is relevant, complete and coherent."),
        ),
    ),
}


def _unique(draw: Callable[[], tuple[str, V]], used: set[str]) -> V:
    """Draws until the content key has not been used; every template offers far more keys than the bank needs."""
    for _ in range(10_000):
        key, content = draw()
        if key not in used:
            used.add(key)
            return content
    raise RuntimeError("the demo templates ran out of distinct content")


# --- Standalone task types ---------------------------------------------------------------------------------------


def _academic_paragraph(w: _Writer, topic: txt.Topic, key_sentences: Sequence[str], low: int, high: int) -> str:
    """The topic's opener, its key sentences and fillers at random places, at least low and at most high words."""
    opener = f"Researchers in {topic.field} have long been interested in {topic.name}."
    body = list(key_sentences)
    words = _words(opener) + sum(_words(s) for s in body)
    for filler in w.shuffled(txt.ACADEMIC_FILLERS):
        if words >= low:
            break
        sentence = filler.format(field=topic.field, name=topic.name)
        if words + _words(sentence) <= high:
            body.insert(int(w.rng.integers(len(body) + 1)), sentence)
            words += _words(sentence)
    return " ".join([opener, *body])


def _key_sentences(topic: txt.Topic) -> list[str]:
    return [
        f"One well-known observation is that {topic.feature}.",
        f"Researchers have found that {topic.cause} can lead to {topic.effect}.",
        f"Much of what is known comes from {topic.method}, carried out mainly in {topic.place}.",
        f"The subject matters for a simple reason: {topic.benefit}.",
    ]


def _complete_the_words(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    low, high = TEXT_WORD_RANGE[T.TASK_TYPE_COMPLETE_THE_WORDS]

    def draw() -> tuple[str, str]:
        topic = txt.TOPICS[int(w.rng.integers(len(txt.TOPICS)))]
        keys = w.shuffled(_key_sentences(topic))[: int(w.rng.integers(1, 3))]
        paragraph = _academic_paragraph(w, topic, keys, low + 5, high - 2)
        return paragraph, paragraph

    words = _unique(draw, used).split()
    first_sentence_end = next(i for i, word in enumerate(words) if word.endswith("."))
    # As on the test: the first sentence stays whole, then every second word loses its second half.
    slots: list[item_pb2.CompletionSlot] = []
    completions: list[str] = []
    index = first_sentence_end + 2
    while len(slots) < CTW_SLOT_COUNT:
        word = words[index]
        if not (word.isalpha() and word.islower() and len(word) >= 2):
            index += 1
            continue
        visible = (len(word) + 1) // 2
        slots.append(
            T.CompletionSlot(word_index=index, visible_prefix=word[:visible], missing_letters=len(word) - visible)
        )
        completions.append(word[visible:])
        words[index] = word[:visible] + "_" * (len(word) - visible)
        index += 2
    return _Parts(
        content=T.ItemContent(
            prompt="Fill in the missing letters to complete the words in the paragraph.",
            text=" ".join(words),
            slots=slots,
        ),
        answer_key=T.AnswerKey(completions=completions),
        irt=w.irt_gpcm(CTW_SLOT_COUNT),
    )


def _choose_response(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    slots = {**COMMON_SLOTS, "facility": txt.DAILY_SLOTS["facility"], "place": txt.DAILY_SLOTS["place"]}

    def draw() -> tuple[str, tuple[str, str, list[str]]]:
        index = int(w.rng.integers(len(txt.RESPONSE_PAIRS)))
        values = w.fill(slots, sorted(slots))
        line, answer = (part.format(**values) for part in txt.RESPONSE_PAIRS[index])
        others = [reply.format(**values) for i, (_, reply) in enumerate(txt.RESPONSE_PAIRS) if i != index]
        return line, (line, answer, others)

    line, answer, others = _unique(draw, used)
    options, key = w.options(answer, others)
    return _Parts(
        content=T.ItemContent(
            prompt="Listen to the speaker and choose the best response.",
            options=options,
            audio_url=_audio_url(external_id),
        ),
        # The spoken line, for authors and reviewers; students only hear it.
        answer_key=T.AnswerKey(correct_option=key, reference_text=line),
        irt=w.irt_3pl(guessing=True),
    )


def _build_a_sentence(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    slots = {**COMMON_SLOTS, **txt.BUILD_SLOTS}

    def draw() -> tuple[str, tuple[str, str]]:
        context, reply = txt.BUILD_PAIRS[int(w.rng.integers(len(txt.BUILD_PAIRS)))]
        values = w.fill(slots, sorted(slots))
        context, sentence = context.format(**values), reply.format(**values)
        return f"{context}/{sentence}", (context, sentence)

    context, sentence = _unique(draw, used)
    sequence = sentence.split()
    bank = sequence
    while bank == sequence:
        bank = w.shuffled(sequence)
    return _Parts(
        content=T.ItemContent(
            prompt="Make an appropriate sentence by putting the words in the right order.",
            text=context,
            word_bank=bank,
        ),
        answer_key=T.AnswerKey(correct_sequence=sequence),
        irt=w.irt_3pl(guessing=False),
    )


def _write_an_email(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    slots = {
        **COMMON_SLOTS,
        "cafe": txt.DAILY_SLOTS["cafe"],
        "event": txt.DAILY_SLOTS["event"],
        "facility": txt.DAILY_SLOTS["facility"],
        "thing": txt.EMAIL_THINGS,
    }

    def draw() -> tuple[str, tuple[str, str, str, tuple[str, str, str], str]]:
        recipient, greeting, situation, tasks = txt.EMAIL_SCENARIOS[int(w.rng.integers(len(txt.EMAIL_SCENARIOS)))]
        values = w.fill(slots, sorted(slots))
        recipient, greeting, situation = (part.format(**values) for part in (recipient, greeting, situation))
        return f"{recipient}/{situation}", (recipient, greeting, situation, tasks, values["student"])

    recipient, greeting, situation, tasks, sender = _unique(draw, used)
    # The tasks address the student ("describe your experience"); the exemplar speaks as the student.
    mine = [re.sub(r"\byour(self)?\b", lambda m: "myself" if m.group(1) else "my", task) for task in tasks]
    bullets = "\n".join(f"- {_capitalize(task)}." for task in tasks)
    exemplar = (
        f"{greeting},\n\nI hope this message finds you well. I am writing about a matter I would like to sort "
        f"out. First, I would like to {mine[0]}, because I think it is important that you have the full picture. "
        f"Second, I want to {mine[1]}, so that you understand why this matters to me. "
        f"Finally, I would like to {mine[2]}. I would be grateful for a reply whenever you have time, and I am "
        f"happy to provide any further details you might need.\n\nThank you very much for your help.\n\n"
        f"Best regards,\n{sender}"
    )
    return _Parts(
        content=T.ItemContent(
            prompt=f"Write an email to {recipient}. In your email, do the following:\n{bullets}\n"
            "Write as much as you can and in complete sentences.",
            text=situation,
            min_words=EMAIL_WORDS[0],
            max_words=EMAIL_WORDS[1],
        ),
        answer_key=T.AnswerKey(reference_text=exemplar),
        irt=w.irt_gpcm(RATED_MAX_SCORE),
        rubric=RUBRICS[w.task_type],
    )


def _academic_discussion(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    def draw() -> tuple[str, tuple[tuple[str, str, str, str], str, str, str]]:
        question = txt.DISCUSSION_QUESTIONS[int(w.rng.integers(len(txt.DISCUSSION_QUESTIONS)))]
        professor = w.pick(txt.LAST_NAMES)
        first, second = w.shuffled(txt.FIRST_NAMES)[:2]
        # Each question at most once: there are more questions than the bank needs discussions.
        return question[1], (question, professor, first, second)

    (field, question, post1, post2), professor, first, second = _unique(draw, used)
    agree, agreed_post, other = (first, post1, second) if w.rng.integers(2) == 0 else (second, post2, first)
    exemplar = (
        f"This is a difficult question, and both {first} and {second} make fair points. Still, I agree with "
        f"{agree}. As {agree} says, {agreed_post[0].lower()}{agreed_post[1:]} I would add one more reason: when "
        "people can see the practical results of a decision in their own lives, they are much more willing to "
        "support it. For example, in my own community, a similar change was discussed for years, and opinions "
        f"only shifted once people experienced the benefits directly. I understand {other}'s concern, and it "
        "should be taken seriously, but I believe the advantages are greater in the long run."
    )
    return _Parts(
        content=T.ItemContent(
            prompt=f"Your professor is teaching a class on {field}. Write a post responding to the professor's "
            "question. In your response, express and support your opinion and make a contribution to the "
            "discussion.",
            text=f"Professor {professor}: {question}\n\n{first}: {post1}\n\n{second}: {post2}",
            min_words=DISCUSSION_WORDS[0],
            max_words=DISCUSSION_WORDS[1],
        ),
        answer_key=T.AnswerKey(reference_text=exemplar),
        irt=w.irt_gpcm(RATED_MAX_SCORE),
        rubric=RUBRICS[w.task_type],
    )


def _listen_and_repeat(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    slots = {**COMMON_SLOTS, "facility": txt.DAILY_SLOTS["facility"], "place": txt.DAILY_SLOTS["place"]}

    def draw() -> tuple[str, str]:
        sentence = w.pick(txt.REPEAT_TEMPLATES).format(**w.fill(slots, sorted(slots)))
        return sentence, sentence

    sentence = _unique(draw, used)
    return _Parts(
        content=T.ItemContent(
            prompt="Listen to the sentence and repeat it exactly as you hear it.",
            audio_url=_audio_url(external_id),
            response_seconds=min(max(6 + _words(sentence) // 2, 8), 15),
        ),
        answer_key=T.AnswerKey(reference_text=sentence),
        irt=w.irt_gpcm(RATED_MAX_SCORE),
        rubric=RUBRICS[w.task_type],
    )


def _take_an_interview(w: _Writer, external_id: str, used: set[str]) -> _Parts:
    def draw() -> tuple[str, str]:
        question = w.pick(txt.INTERVIEW_QUESTIONS)
        return question, question

    question = _unique(draw, used)
    exemplar = (
        f"{w.pick(txt.INTERVIEW_OPENINGS)} it depends a little on the situation, but overall my answer is clear. "
        f"The main reason is that {w.pick(txt.INTERVIEW_REASONS)}. For example, last year I tried a different "
        "approach for a few months, and I noticed the difference quite quickly. So, all things considered, I "
        "would make the same choice again."
    )
    return _Parts(
        content=T.ItemContent(
            prompt=question,
            audio_url=_audio_url(external_id),
            response_seconds=INTERVIEW_SECONDS,
            preparation_seconds=0,
        ),
        answer_key=T.AnswerKey(reference_text=exemplar),
        irt=w.irt_gpcm(RATED_MAX_SCORE),
        rubric=RUBRICS[w.task_type],
    )


STANDALONE_MAKERS: Mapping[TaskTypeValue, Callable[[_Writer, str, set[str]], _Parts]] = {
    T.TASK_TYPE_COMPLETE_THE_WORDS: _complete_the_words,
    T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE: _choose_response,
    T.TASK_TYPE_BUILD_A_SENTENCE: _build_a_sentence,
    T.TASK_TYPE_WRITE_AN_EMAIL: _write_an_email,
    T.TASK_TYPE_ACADEMIC_DISCUSSION: _academic_discussion,
    T.TASK_TYPE_LISTEN_AND_REPEAT: _listen_and_repeat,
    T.TASK_TYPE_TAKE_AN_INTERVIEW: _take_an_interview,
}


# --- Passage sets ------------------------------------------------------------------------------------------------


def _choose(w: _Writer, questions: Sequence[V], size: int) -> list[V]:
    """`size` of the questions, kept in their template order."""
    return [questions[int(i)] for i in sorted(w.rng.choice(len(questions), size, replace=False))]


def _slot_questions(
    templates: Sequence[tuple[str, str, str]], values: Mapping[str, str], slots: Mapping[str, Sequence[str]]
) -> list[Question]:
    return [(q.format(**values), values[slot], slots[slot.rstrip("2")], pattern) for q, slot, pattern in templates]


def _daily_life(w: _Writer, number: int, size: int) -> tuple[_Stimulus, list[Question]]:
    slots = {**COMMON_SLOTS, **txt.DAILY_SLOTS}
    title, text, questions = txt.DAILY_KINDS[(number - 1) % len(txt.DAILY_KINDS)]
    used_names = [n for n in (*sorted(slots), *(f"{s}2" for s in sorted(slots))) if "{" + n + "}" in title + text]
    values = w.fill(slots, used_names)
    return (
        _Stimulus(title=DEMO_TITLE_PREFIX + title.format(**values), text=text.format(**values)),
        _slot_questions(_choose(w, questions, size), values, slots),
    )


def _topic(w: _Writer, number: int) -> txt.Topic:
    # Every topic once before any repeats, in an order of the task type's own stream.
    order = np.random.default_rng([w.seed, int(w.task_type), 0]).permutation(len(txt.TOPICS))
    return txt.TOPICS[int(order[(number - 1) % len(txt.TOPICS)])]


# (question, the Topic field that answers it, option pattern); the same field of other topics are distractors.
TOPIC_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("What is {work} mainly about?", "title", "{}"),
    ("According to {source}, which of the following is true?", "feature", "{}."),
    ("According to {source}, what can {cause} lead to?", "effect", "{}"),
    ("According to {source}, how has much of the evidence been gathered?", "method", "Through {}"),
    ("According to {source}, where was much of the research carried out?", "place", "In {}"),
    ("According to {source}, why does the subject matter?", "benefit", "{}."),
)


def _topic_questions(topic: txt.Topic, *, spoken: bool) -> list[Question]:
    words = {
        "work": "the lecture" if spoken else "the passage",
        "source": "the professor" if spoken else "the passage",
        "cause": topic.cause,
    }
    others = [t for t in txt.TOPICS if t is not topic]
    return [
        (question.format(**words), getattr(topic, field), [getattr(t, field) for t in others], pattern)
        for question, field, pattern in TOPIC_QUESTIONS
    ]


def _academic_passage(w: _Writer, number: int, size: int) -> tuple[_Stimulus, list[Question]]:
    topic = _topic(w, number)
    high = TEXT_WORD_RANGE[T.TASK_TYPE_READ_ACADEMIC_PASSAGE][1]
    text = _academic_paragraph(w, topic, _key_sentences(topic), 190, high - 20)
    return (
        _Stimulus(title=DEMO_TITLE_PREFIX + topic.title, text=text),
        _choose(w, _topic_questions(topic, spoken=False), size),
    )


def _academic_talk(w: _Writer, number: int, size: int) -> tuple[_Stimulus, list[Question]]:
    topic = _topic(w, number)
    names = {"name": topic.name, "field": topic.field}
    lines = [
        w.pick(txt.LECTURE_OPENERS).format(**names),
        f"So, the first thing to know is that {topic.feature}.",
        f"Now, what happens with {topic.cause}? Well, it can lead to {topic.effect}.",
        f"How do we know all this? Mostly from {topic.method}, and a lot of that work was done in {topic.place}.",
        f"And why should we care? Because {topic.benefit}.",
    ]
    for filler in w.shuffled(txt.LECTURE_FILLERS)[:3]:
        lines.insert(int(w.rng.integers(1, len(lines) + 1)), filler.format(**names))
    lines.append(w.pick(txt.LECTURE_CLOSERS))
    return (
        _Stimulus(
            title=f"{DEMO_TITLE_PREFIX}Lecture: {topic.title}",
            text=f"Listen to part of a lecture in a {topic.field} class.",
            transcript="Professor: " + " ".join(lines),
        ),
        _choose(w, _topic_questions(topic, spoken=True), size),
    )


def _conversation(w: _Writer, number: int, size: int) -> tuple[_Stimulus, list[Question]]:
    role, problem, solution, place = txt.CONVERSATION_SCENARIOS[
        int(w.rng.integers(len(txt.CONVERSATION_SCENARIOS)))
    ]
    fields = ("role", "problem", "solution", "place")
    slots = {
        **COMMON_SLOTS,
        **{field: [scenario[i] for scenario in txt.CONVERSATION_SCENARIOS] for i, field in enumerate(fields)},
    }
    values = w.fill(COMMON_SLOTS, sorted(COMMON_SLOTS))
    values.update(role=role, Role=_capitalize(role), problem=problem, solution=solution, place=place)
    return (
        _Stimulus(
            title=f"{DEMO_TITLE_PREFIX}Conversation with {_with_article(role)}",
            text=f"Listen to a conversation between a student and {_with_article(role)}.",
            transcript="\n".join(w.pick(choices).format(**values) for choices in txt.CONVERSATION_LINES),
        ),
        _slot_questions(_choose(w, txt.CONVERSATION_QUESTIONS, size), values, slots),
    )


def _announcement(w: _Writer, number: int, size: int) -> tuple[_Stimulus, list[Question]]:
    slots = {**COMMON_SLOTS, **txt.ANNOUNCEMENT_SLOTS}
    values = w.fill(slots, sorted(slots))
    lines = [w.pick(txt.ANNOUNCEMENT_OPENERS), *txt.ANNOUNCEMENT_BODY, w.pick(txt.ANNOUNCEMENT_CLOSERS)]
    return (
        _Stimulus(
            title=f"{DEMO_TITLE_PREFIX}Announcement: {values['event']}",
            text=f"Listen to an announcement by {w.pick(txt.ANNOUNCEMENT_SPEAKERS)}.",
            transcript=" ".join(line.format(**values) for line in lines),
        ),
        _slot_questions(_choose(w, txt.ANNOUNCEMENT_QUESTIONS, size), values, slots),
    )


SET_MAKERS: Mapping[TaskTypeValue, Callable[[_Writer, int, int], tuple[_Stimulus, list[Question]]]] = {
    T.TASK_TYPE_READ_IN_DAILY_LIFE: _daily_life,
    T.TASK_TYPE_READ_ACADEMIC_PASSAGE: _academic_passage,
    T.TASK_TYPE_LISTEN_TO_CONVERSATION: _conversation,
    T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT: _announcement,
    T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK: _academic_talk,
}


def _passage_sets(seed: int, task_type: TaskTypeValue, bank: DemoBank) -> None:
    w = _Writer(seed, task_type)
    sizes = SET_SIZES[task_type]
    listening = SECTION_BY_TASK_TYPE[task_type] == T.SECTION_LISTENING
    for number, size_index in enumerate(w.rng.permutation(len(sizes)), start=1):
        code = _external_id(task_type, number)
        passage_id = "demo-psg-" + code.removeprefix("demo-")
        stimulus, questions = SET_MAKERS[task_type](w, number, sizes[int(size_index)])
        bank.passages.append(
            T.Passage(
                external_id=passage_id,
                section=w.section,
                task_type=task_type,
                title=stimulus.title,
                text=stimulus.text,
                audio_url=_audio_url(passage_id) if listening else "",
                transcript=stimulus.transcript,
                demo=True,
            )
        )
        for position, (prompt, correct, pool, pattern) in enumerate(questions, start=1):
            options, key = w.options(correct, pool, pattern)
            parts = _Parts(
                content=T.ItemContent(prompt=prompt, options=options),
                answer_key=T.AnswerKey(correct_option=key),
                irt=w.irt_3pl(guessing=True),
            )
            item_id = f"{code}-q{position}"
            bank.items.append(
                w.item(item_id, T.ITEM_STATUS_ACTIVE, parts, passage_id=passage_id, position=position)
            )


def _standalone(
    seed: int, task_type: TaskTypeValue, extra: Sequence[item_pb2.ItemStatus.ValueType], bank: DemoBank
) -> None:
    w = _Writer(seed, task_type)
    used: set[str] = set()
    statuses = [T.ITEM_STATUS_ACTIVE] * STANDALONE_ACTIVE[task_type] + list(extra)
    for number, status in enumerate(statuses, start=1):
        external_id = _external_id(task_type, number)
        bank.items.append(w.item(external_id, status, STANDALONE_MAKERS[task_type](w, external_id, used)))


def generate_demo_bank(seed: int = DEFAULT_SEED) -> DemoBank:
    """The demo bank of `seed`: the same seed always gives a byte-identical bank."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    standalone = list(STANDALONE_ACTIVE)
    extra: dict[TaskTypeValue, list[item_pb2.ItemStatus.ValueType]] = {t: [] for t in standalone}
    statuses = [status for status, count in EXTRA_STATUSES for _ in range(count)]
    for i, status in enumerate(statuses):
        extra[standalone[i % len(standalone)]].append(status)
    bank = DemoBank(passages=[], items=[])
    for task_type in sorted(SECTION_BY_TASK_TYPE):
        if task_type in SET_SIZES:
            _passage_sets(seed, task_type, bank)
        else:
            _standalone(seed, task_type, extra[task_type], bank)
    return bank


def content_hash(bank: DemoBank) -> str:
    """sha256 over the deterministic serialization of every medium, passage and item, in order."""
    digest = hashlib.sha256()
    for message in (*bank.media, *bank.passages, *bank.items):
        data = message.SerializeToString(deterministic=True)
        # Length prefixes keep the boundaries between messages part of what is hashed.
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()
