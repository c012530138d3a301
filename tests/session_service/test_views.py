"""The STUDENT view: walking every field at every depth finds no key, rubric, parameter or author data."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from toefl.item.v1 import item_pb2

from session_service.views import student_item, student_passage

FORBIDDEN = {"answer_key", "irt", "rubric", "provenance", "external_id", "transcript", "etag"}


def field_paths(message: Message, prefix: str = "") -> Iterator[str]:
    """Every set field, at every depth, including inside repeated messages."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        yield path
        if field.message_type is None:
            continue
        if field.is_repeated:
            for index, element in enumerate(value):
                yield from field_paths(element, f"{path}[{index}].")
        else:
            yield from field_paths(value, f"{path}.")


def forbidden_paths(message: Message) -> list[str]:
    return [p for p in field_paths(message) if p.rsplit(".", 1)[-1].split("[")[0] in FORBIDDEN]


def full_item() -> item_pb2.Item:
    return item_pb2.Item(
        item_id="itm-1",
        external_id="ext-1",
        etag="e1",
        task_type=item_pb2.TASK_TYPE_COMPLETE_THE_WORDS,
        revision=3,
        content=item_pb2.ItemContent(
            prompt="Fill in", text="The ho... ", slots=[item_pb2.CompletionSlot(word_index=1, missing_letters=3)]
        ),
        answer_key=item_pb2.AnswerKey(completions=["use"], correct_option=2),
        irt=item_pb2.IrtParameters(model=item_pb2.IRT_MODEL_GPCM, a=1.1, steps=[0.1]),
        rubric=item_pb2.Rubric(name="r", max_score=5),
        provenance=item_pb2.Provenance(author="someone"),
    )


def test_the_walk_finds_what_the_full_view_holds() -> None:
    # Guards the test itself: if the walk missed nested fields, the next test would pass for nothing.
    assert {"answer_key", "irt", "rubric", "provenance", "external_id", "etag"} <= {
        p.split(".")[0] for p in forbidden_paths(full_item())
    }
    assert "content.slots[0].missing_letters" in set(field_paths(full_item()))


def test_student_item_keeps_content_and_drops_everything_secret() -> None:
    view = student_item(full_item())
    assert forbidden_paths(view) == []
    assert view.content.slots[0].missing_letters == 3 and view.revision == 3


def test_student_passage_drops_the_transcript() -> None:
    passage = item_pb2.Passage(passage_id="psg-1", text="t", transcript="secret", external_id="x", item_ids=["a"])
    view = student_passage(passage)
    assert forbidden_paths(view) == [] and list(view.item_ids) == ["a"]
