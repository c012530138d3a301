"""The stored answer read back for scoring is the message that was stored, whatever its shape."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from toefl.session.v1 import session_service_pb2 as pb

from session_service.domain.scores import AnswerRow
from session_service.scoring import parse_answer

ANSWERS = [
    pb.Answer(choice_index=0),
    pb.Answer(choice_index=3),
    pb.Answer(completions=pb.StringList(values=["", "ab", " Cd "])),
    pb.Answer(completions=pb.StringList()),
    pb.Answer(word_sequence=pb.StringList(values=["the", "cat", "the"])),
    pb.Answer(word_sequence=pb.StringList()),
    pb.Answer(text="Dear Professor,\n I would like..."),
    pb.Answer(text=""),
    pb.Answer(speech=pb.SpeechResponse(audio_ref="audio/x.webm", transcript="hello", duration_ms=1200)),
    pb.Answer(),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: str(a.WhichOneof("value")))
def test_a_stored_answer_reads_back_as_stored(answer: pb.Answer) -> None:
    stored = json_format.MessageToJson(answer, indent=None)
    read = parse_answer(AnswerRow(response_id=1, answer_json=stored, elapsed_ms=0, saved_ms=0))
    assert read == answer and read is not None and read.WhichOneof("value") == answer.WhichOneof("value")


def test_no_answer_is_none() -> None:
    assert parse_answer(None) is None
