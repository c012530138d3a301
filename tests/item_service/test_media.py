"""Prompt audio in the bank: the demo bank's speech, `check` on blobs, export and import, GetMedia by role."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from toefl.item.v1 import item_pb2, item_service_pb2

from item_service.demo_audio import item_turns, passage_turns
from item_service.mp3 import Mp3Error, read_mp3
from item_service.speech import MP3_BITRATE_KBPS, MP3_CONTENT_TYPE, Turn, Voice, speak_mp3
from item_service.storage import ItemBank, ItemFilter, create_bank_engine
from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, STUDENT, TEACHER, Stub, fails
from tests.item_service.test_cli import cli, ok
from tests.support.tokens import metadata
from toefl_core.auth import Role
from toefl_core.media import media_digest, sha256_hex

T = item_pb2
CODE = grpc.StatusCode
VOICED_ITEM_TYPES = {
    T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE,
    T.TASK_TYPE_LISTEN_AND_REPEAT,
    T.TASK_TYPE_TAKE_AN_INTERVIEW,
}
# Seconds of audio per spoken word: speech at 140-165 words a minute is about 0.4, with pauses and the silence
# around a short sentence more.
SECONDS_PER_WORD = (0.2, 1.0)


class Bank:
    """The demo bank read through item_service's own storage, read-only."""

    def __init__(self, path: Path) -> None:
        self.bank = ItemBank(create_bank_engine(f"sqlite:///{path}", read_only=True), read_only=True)
        with self.bank.reading() as reader:
            self.passages, self.items = reader.export(filters=ItemFilter())
            self.media = {m.sha256: m for m in reader.media_of(passages=self.passages, items=self.items)}


@pytest.fixture(scope="module")
def demo(demo_bank_template: Path) -> Iterator[Bank]:
    bank = Bank(demo_bank_template)
    yield bank
    bank.bank.dispose()


def spoken_words(turns: list[Turn]) -> int:
    return sum(len(turn.text.split()) for turn in turns)


def test_every_listening_and_speaking_prompt_has_audio_that_decodes(demo: Bank) -> None:
    voiced = [
        (p.external_id, p.audio_url, passage_turns(p)) for p in demo.passages if p.section == T.SECTION_LISTENING
    ]
    voiced += [
        (i.external_id, i.content.audio_url, item_turns(i)) for i in demo.items if i.task_type in VOICED_ITEM_TYPES
    ]
    assert len(voiced) == 336
    assert not [i.external_id for i in demo.items if i.task_type not in VOICED_ITEM_TYPES and i.content.audio_url]
    for external_id, url, turns in voiced:
        digest = media_digest(url)
        assert digest in demo.media, (external_id, url)
        blob = demo.media[digest]
        assert blob.content_type == MP3_CONTENT_TYPE and sha256_hex(blob.data) == digest
        mp3 = read_mp3(blob.data)
        assert (mp3.sample_rate, mp3.bitrate_kbps) == (22050, MP3_BITRATE_KBPS)
        low, high = SECONDS_PER_WORD
        words = spoken_words(turns)
        assert low * words <= mp3.seconds <= high * words, (external_id, words, mp3.seconds)


def test_the_two_speakers_of_a_conversation_have_different_voices(demo: Bank) -> None:
    conversations = [p for p in demo.passages if p.task_type == T.TASK_TYPE_LISTEN_TO_CONVERSATION]
    assert conversations
    for passage in conversations:
        turns = passage_turns(passage)
        student_voices = {t.voice for t in turns[0::2]}
        staff_voices = {t.voice for t in turns[1::2]}
        assert len(student_voices) == len(staff_voices) == 1 and student_voices != staff_voices
        assert not any(t.text.startswith("Student:") for t in turns)


def test_speech_is_the_same_bytes_every_time() -> None:
    # The female variants draw breath noise from eSpeak's random generator: its seed is fixed per utterance.
    turns = [Turn(Voice("en-us+f3"), "Is this a good time to talk?"), Turn(Voice("en-us+m3"), "Of course.")]
    assert speak_mp3(turns) == speak_mp3(turns)


def test_mp3_reader_refuses_what_is_not_mp3() -> None:
    data = speak_mp3([Turn(Voice("en-us+m1"), "Welcome to the library.")])
    assert read_mp3(data).frames > 10
    for broken in (b"", b"hello, this is a text file", data[:-7], b"RIFF" + data[4:]):
        with pytest.raises(Mp3Error):
            read_mp3(broken)


def first_blob(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT min(sha256) FROM media").fetchone()[0])


def test_check_fails_when_a_blob_is_altered_or_missing(item_bank_path: Path) -> None:
    assert "all present and intact (336 blobs" in ok(cli("check", database=item_bank_path))
    digest = first_blob(item_bank_path)
    with sqlite3.connect(item_bank_path) as connection:
        (data,) = connection.execute("SELECT data FROM media WHERE sha256 = ?", (digest,)).fetchone()
        flipped = data[:999] + bytes([data[999] ^ 1]) + data[1000:]
        connection.execute("UPDATE media SET data = ? WHERE sha256 = ?", (flipped, digest))
    altered = cli("check", database=item_bank_path)
    assert altered.returncode == 1 and "media check failed: 1 problem" in altered.stdout
    assert f"media {digest} was altered" in altered.stdout
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute("DELETE FROM media WHERE sha256 = ?", (digest,))
    missing = cli("check", database=item_bank_path)
    assert missing.returncode == 1 and f"its audio {digest} is missing from the bank" in missing.stdout
    assert "Traceback" not in altered.stderr + missing.stderr


def test_export_and_import_carry_the_audio(item_bank_path: Path, tmp_path: Path) -> None:
    export = tmp_path / "bank.jsonl"
    assert "exported 336 media, 180 passages" in ok(cli("export", "--out", str(export), database=item_bank_path))
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert [next(iter(r)) for r in records[:336]] == ["media"] * 336
    fresh = tmp_path / "fresh" / "item_bank.db"
    fresh.parent.mkdir()
    ok(cli("migrate", "--create", database=fresh))
    assert "media created 336" in ok(cli("import", str(export), database=fresh))
    assert "336 audio references, all present and intact" in ok(cli("check", database=fresh))
    copy = Bank(fresh)
    try:
        assert copy.media == Bank(item_bank_path).media
    finally:
        copy.bank.dispose()
    # A second import finds every blob there already.
    assert "left 1070 unchanged; passages created 0, updated 0; media created 0" in ok(
        cli("import", str(export), database=fresh)
    )


def test_import_refuses_altered_audio_and_references_to_audio_it_lacks(
    item_bank_path: Path, tmp_path: Path
) -> None:
    export = tmp_path / "bank.jsonl"
    ok(cli("export", "--out", str(export), database=item_bank_path))
    lines = export.read_text().splitlines()
    media_line = json.loads(lines[0])
    media_line["media"]["data"] = media_line["media"]["data"][:-8] + "AAAAAAA="
    altered = tmp_path / "altered.jsonl"
    altered.write_text(json.dumps(media_line) + "\n")
    done = cli("import", str(altered), database=item_bank_path)
    assert (
        done.returncode == 1 and "media[0].sha256" in done.stderr and "not the SHA-256 of its data" in done.stderr
    )
    # Items and passages without their media, into a bank that has none.
    fresh = tmp_path / "fresh" / "item_bank.db"
    fresh.parent.mkdir()
    ok(cli("migrate", "--create", database=fresh))
    orphans = tmp_path / "orphans.jsonl"
    orphans.write_text("\n".join(line for line in lines if not line.startswith('{"media"')) + "\n")
    done = cli("import", str(orphans), database=fresh)
    assert done.returncode == 1 and re.search(
        r"passages\[\d+\]\.audio_url: no media [0-9a-f]{64} in the item bank", done.stderr
    )


def test_external_audio_urls_still_work(tmp_path: Path) -> None:
    bank = tmp_path / "item_bank.db"
    ok(cli("migrate", "--create", database=bank))
    item = item_pb2.Item(
        external_id="real-ls-resp-1",
        task_type=T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE,
        content=item_pb2.ItemContent(prompt="Listen.", audio_url="https://media.example.org/a.mp3"),
    )
    records = tmp_path / "real.jsonl"
    records.write_text(json.dumps({"item": json_format.MessageToDict(item)}) + "\n")
    assert "created 1" in ok(cli("import", str(records), database=bank))
    assert "0 audio references, all present and intact (0 blobs" in ok(cli("check", database=bank))


def test_get_media_gives_staff_the_bytes_and_refuses_students(item_stub: Stub, demo: Bank) -> None:
    passage = next(p for p in demo.passages if p.task_type == T.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK)
    digest = media_digest(passage.audio_url)
    assert digest is not None
    for meta in (TEACHER, metadata(Role.RATER), AUTHOR, ADMIN, SERVICE):
        body = item_stub.GetMedia(item_service_pb2.GetMediaRequest(sha256=digest), metadata=meta)
        assert (body.content_type, body.data) == (MP3_CONTENT_TYPE, demo.media[digest].data)
    request = item_service_pb2.GetMediaRequest(sha256=digest)
    fails(item_stub.GetMedia, request, STUDENT, CODE.PERMISSION_DENIED, "students do not read the item bank")
    fails(item_stub.GetMedia, request, (), CODE.UNAUTHENTICATED)
    fails(
        item_stub.GetMedia,
        item_service_pb2.GetMediaRequest(sha256="abc"),
        TEACHER,
        CODE.INVALID_ARGUMENT,
        field="sha256",
    )
    fails(item_stub.GetMedia, item_service_pb2.GetMediaRequest(sha256="0" * 64), TEACHER, CODE.NOT_FOUND, "0" * 64)


def test_export_rpc_streams_the_media_first(item_stub: Stub, demo: Bank) -> None:
    request = item_service_pb2.ExportItemsRequest(task_type=T.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT)
    records = list(item_stub.ExportItems(request, metadata=AUTHOR))
    kinds = [str(record.WhichOneof("record")) for record in records]
    media = [record.media for record in records if record.HasField("media")]
    passages = [record.passage for record in records if record.HasField("passage")]
    assert kinds == sorted(kinds, key=["media", "passage", "item"].index) and len(media) == len(passages) == 30
    assert {m.sha256 for m in media} == {media_digest(p.audio_url) for p in passages}
    assert all(m.data == demo.media[m.sha256].data for m in media)


def test_import_rpc_stores_new_audio_and_writes_refuse_references_to_audio_the_bank_lacks(item_stub: Stub) -> None:
    data = speak_mp3([Turn(Voice("en-us+m1"), "Excuse me, is this seat taken?")])
    digest = sha256_hex(data)
    item = item_pb2.Item(
        external_id="test-media-ls-resp-1",
        task_type=T.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE,
        content=item_pb2.ItemContent(prompt="Listen.", audio_url=f"sha256:{digest}"),
    )
    blob = item_pb2.Media(sha256=digest, content_type=MP3_CONTENT_TYPE, data=data)
    without_blob = item_service_pb2.ImportItemsRequest(items=[item])
    fails(
        item_stub.ImportItems,
        without_blob,
        ADMIN,
        CODE.INVALID_ARGUMENT,
        "no media",
        field="items[0].content.audio_url",
    )
    fails(
        item_stub.CreateItem,
        item_service_pb2.CreateItemRequest(item=item),
        AUTHOR,
        CODE.INVALID_ARGUMENT,
        digest,
        field="content.audio_url",
    )
    wrong = item_pb2.Media(sha256="0" * 64, content_type=MP3_CONTENT_TYPE, data=data)
    bad_hash = item_service_pb2.ImportItemsRequest(media=[wrong], items=[item])
    fails(item_stub.ImportItems, bad_hash, ADMIN, CODE.INVALID_ARGUMENT, field="media[0].sha256")
    text = item_pb2.Media(content_type="text/plain", data=b"hello")
    bad_type = item_service_pb2.ImportItemsRequest(media=[text])
    fails(item_stub.ImportItems, bad_type, ADMIN, CODE.INVALID_ARGUMENT, field="media[0].content_type")
    done = item_stub.ImportItems(
        item_service_pb2.ImportItemsRequest(media=[blob, blob], items=[item]), metadata=ADMIN
    )
    assert (done.media_created, done.created) == (1, 1)
    body = item_stub.GetMedia(item_service_pb2.GetMediaRequest(sha256=digest), metadata=TEACHER)
    assert body.data == data
    again = item_stub.ImportItems(item_service_pb2.ImportItemsRequest(media=[blob], items=[item]), metadata=ADMIN)
    assert (again.media_created, again.unchanged) == (0, 1)
