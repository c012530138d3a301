"""The demo bank's prompt audio: each listening stimulus and speaking prompt read aloud from its script."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from toefl.item.v1 import item_pb2

from item_service.demo_bank import DemoBank
from item_service.speech import MP3_CONTENT_TYPE, Turn, Voice, speak_mp3
from toefl_core.media import media_ref, sha256_hex

T = item_pb2
# Two lists, so that the two speakers of a conversation never share a voice: one is drawn from each.
FEMALE_VOICES = (
    Voice("en-us+f3", words_per_minute=165, pitch=58),
    Voice("en-us+f1", words_per_minute=155, pitch=52),
    Voice("en-us+f4", words_per_minute=160, pitch=62),
)
MALE_VOICES = (
    Voice("en-us+m3", words_per_minute=155, pitch=42),
    Voice("en-us+m1", words_per_minute=165, pitch=48),
    Voice("en-us+m7", words_per_minute=150, pitch=40),
)
# A sentence to repeat is read a little slower than other prompts.
REPEAT_WORDS_PER_MINUTE = 140
# "Student: ..." or "Financial aid officer: ..." at the start of a line of a conversation or a lecture.
SPEAKER_LABEL = re.compile(r"([A-Z][A-Za-z' -]{0,40}):\s+(.+)")
LABELLED_TASK_TYPES = frozenset({T.TASK_TYPE_LISTEN_TO_CONVERSATION, T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK})
ProgressFn = Callable[[int, int], None]


def _draw(external_id: str) -> int:
    # From the external id rather than the bank's random streams: voicing the bank changes none of its text.
    return int.from_bytes(hashlib.sha256(external_id.encode()).digest()[:8], "big")


def _voice(external_id: str) -> Voice:
    draw = _draw(external_id)
    voices = FEMALE_VOICES if draw % 2 else MALE_VOICES
    return voices[draw // 2 % len(voices)]


def _labelled_turns(external_id: str, script: str) -> list[Turn]:
    """One turn per line; each speaker keeps one voice, the first and the second from different lists."""
    draw = _draw(external_id)
    lists = (FEMALE_VOICES, MALE_VOICES) if draw % 2 else (MALE_VOICES, FEMALE_VOICES)
    voices: dict[str, Voice] = {}
    turns: list[Turn] = []
    for line in filter(None, (line.strip() for line in script.splitlines())):
        match = SPEAKER_LABEL.fullmatch(line)
        speaker, text = (match.group(1), match.group(2)) if match else ("", line)
        if speaker not in voices:
            pool = lists[len(voices) % 2]
            voices[speaker] = pool[(draw // 2 + len(voices)) % len(pool)]
        turns.append(Turn(voices[speaker], text))
    return turns


def passage_turns(passage: item_pb2.Passage) -> list[Turn]:
    if passage.task_type in LABELLED_TASK_TYPES:
        return _labelled_turns(passage.external_id, passage.transcript)
    return [Turn(_voice(passage.external_id), passage.transcript)]


def item_turns(item: item_pb2.Item) -> list[Turn]:
    """What the student hears: the speaker's line, the sentence to repeat, the interviewer's question."""
    voice = _voice(item.external_id)
    if item.task_type == T.TASK_TYPE_TAKE_AN_INTERVIEW:
        return [Turn(voice, item.content.prompt)]
    if item.task_type == T.TASK_TYPE_LISTEN_AND_REPEAT:
        voice = Voice(voice.name, REPEAT_WORDS_PER_MINUTE, voice.pitch)
    return [Turn(voice, item.answer_key.reference_text)]


def add_prompt_audio(bank: DemoBank, progress: ProgressFn | None = None) -> None:
    """Voices every passage and item that has an audio_url: the blob joins bank.media, the url names it."""
    targets: list[tuple[item_pb2.Passage | item_pb2.ItemContent, Sequence[Turn]]] = [
        (passage, passage_turns(passage)) for passage in bank.passages if passage.audio_url
    ]
    targets += [(item.content, item_turns(item)) for item in bank.items if item.content.audio_url]
    stored: set[str] = set()
    for done, (holder, turns) in enumerate(targets, start=1):
        data = speak_mp3(turns)
        digest = sha256_hex(data)
        if digest not in stored:
            stored.add(digest)
            bank.media.append(item_pb2.Media(sha256=digest, content_type=MP3_CONTENT_TYPE, data=data))
        holder.audio_url = media_ref(digest)
        if progress is not None:
            progress(done, len(targets))
