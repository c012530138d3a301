"""Control characters refused in ids and request ids, at any depth of a request, naming the field."""

from __future__ import annotations

import unicodedata

import pytest
from toefl.item.v1 import item_service_pb2
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb

from toefl_core.errors import InvalidArgument
from toefl_core.ids import CONTROL_CHARACTER, check_ids


def test_the_pattern_is_exactly_unicode_category_cc() -> None:
    for point in range(0x3000):
        char = chr(point)
        assert (CONTROL_CHARACTER.fullmatch(char) is not None) == (unicodedata.category(char) == "Cc"), hex(point)


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (pb.SubmitResponseRequest(session_id="ses-1\x00", item_id="itm-1", request_id="r"), "session_id"),
        (pb.SubmitResponseRequest(session_id="ses-1", request_id="abc\x1b[2J"), "request_id"),
        (pb.GetSessionRequest(session_id="ses\x7f"), "session_id"),
        (pb.GetSessionRequest(session_id="ses\u0085"), "session_id"),
        (item_service_pb2.AssembleModuleRequest(exclude_item_ids=["itm-1", "itm\n2"]), "exclude_item_ids[1]"),
        (
            spb.BatchRescoreSessionsRequest(
                requests=[
                    spb.RescoreSessionRequest(session_id="ses-1", request_id="ok"),
                    spb.RescoreSessionRequest(session_id="ses-2", request_id="r\x00"),
                ]
            ),
            "requests[1].request_id",
        ),
        (
            item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id="\titm")]),
            "items[0].item_id",
        ),
    ],
)
def test_a_control_character_in_an_id_is_refused_naming_the_field(request_message: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_ids(request_message)
    assert info.value.field == field
    assert field in info.value.message and "control character" in info.value.message


def test_printable_ids_and_other_text_pass() -> None:
    check_ids(pb.SubmitResponseRequest(session_id="ses-é-\u2028", item_id="itm-1", request_id="r-1"))
    # Only ids are held to it: an answer's text may hold a new line.
    check_ids(pb.SubmitResponseRequest(session_id="ses-1", answer=pb.Answer(text="Dear Sam,\nThanks.")))
    check_ids(b"\x00 raw bytes of a generic handler")
