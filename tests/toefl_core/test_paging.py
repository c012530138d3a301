"""Page sizes and signed page tokens, in-process: what the services' list tests rely on."""

from __future__ import annotations

import base64
import json

import pytest

from toefl_core.errors import InvalidArgument
from toefl_core.paging import MAX_POSITION_INT, PageTokens, page_size

KEY = "a-test-key-of-some-length-0123456789"


def test_page_size_default_bounds_and_refusals() -> None:
    assert page_size(0, default=50, maximum=200) == 50
    assert page_size(200, default=50, maximum=200) == 200
    for bad in (-1, 201):
        with pytest.raises(InvalidArgument, match="between 1 and 200") as info:
            page_size(bad, default=50, maximum=200)
        assert info.value.field == "page_size"


def test_a_token_round_trips_for_its_own_query_only() -> None:
    tokens = PageTokens(KEY)
    issued = tokens.encode([1700000000000, "ses-1"], query=("ListSessions", "usr-1", 0))
    assert tokens.decode(issued, query=("ListSessions", "usr-1", 0), shape=(int, str)) == (1700000000000, "ses-1")
    assert tokens.decode("", query=("ListSessions", "usr-1", 0), shape=(int, str)) is None
    # Another process with the same service key reads it; another key does not.
    assert PageTokens(KEY).decode(issued, query=("ListSessions", "usr-1", 0), shape=(int, str))
    with pytest.raises(InvalidArgument, match="not a token this service issued"):
        PageTokens(KEY + "x").decode(issued, query=("ListSessions", "usr-1", 0), shape=(int, str))
    for other in (("ListSessions", "usr-2", 0), ("ListSessions", "usr-1", 3), ("ListClasses", "usr-1", 0)):
        with pytest.raises(InvalidArgument, match="different query"):
            tokens.decode(issued, query=other, shape=(int, str))


def test_a_page_of_the_rows_read_one_past_its_size() -> None:
    tokens = PageTokens(KEY)
    query = ("ListClasses", "usr-1")
    rows = [("cls-a",), ("cls-b",), ("cls-c",)]
    page, next_token = tokens.page(rows, 2, query=query, position=list)
    # The third row was read only to know that another page follows; the next page starts after the second.
    assert list(page) == rows[:2]
    assert tokens.decode(next_token, query=query, shape=(str,)) == ("cls-b",)
    for last in (rows[:2], rows[:1], []):
        assert tokens.page(last, 2, query=query, position=list) == (last, "")


def _signed(tokens: PageTokens, payload: bytes) -> str:
    mac = tokens._mac(payload)
    return f"{base64.urlsafe_b64encode(payload).decode()}.{base64.urlsafe_b64encode(mac).decode()}"


@pytest.mark.parametrize(
    "token",
    [
        "WyJ4IiwgMV0=",
        base64.b64encode(json.dumps([None, "x"]).encode()).decode(),
        base64.b64encode(b'[1e400, "x"]').decode(),
        base64.b64encode(json.dumps([[1], "x"]).encode()).decode(),
        "%%%",
        "a.b.c",
        ".",
        "x" * 1000,
    ],
)
def test_anything_not_issued_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        PageTokens(KEY).decode(token, query=("q",), shape=(int, str))
    assert info.value.field == "page_token"


@pytest.mark.parametrize(
    "position", [["x", 1], [None, "x"], [True, "x"], [-1, "x"], [MAX_POSITION_INT + 1, "x"], [1], [1, "x", 2]]
)
def test_a_signed_position_of_the_wrong_shape_is_refused(position: list[object]) -> None:
    # Only a token of another version of this code could be signed and still of another shape.
    tokens = PageTokens(KEY)
    query_digest = json.loads(base64.urlsafe_b64decode(tokens.encode([1, "x"], query=("q",)).split(".")[0] + "=="))
    payload = json.dumps({"p": position, "q": query_digest["q"]}).encode()
    with pytest.raises(InvalidArgument, match="not a token this service issued"):
        tokens.decode(_signed(tokens, payload), query=("q",), shape=(int, str))
