"""What a student's own score report shows of a section: its band only once half its items were answered."""

from __future__ import annotations

import pytest

from session_service.domain.scores import student_sees_band


@pytest.mark.parametrize(
    ("items", "answered", "sees"),
    [(9, 0, False), (9, 1, False), (9, 4, False), (9, 5, True), (18, 9, True), (18, 8, False), (1, 1, True)],
)
def test_the_band_needs_half_the_items_answered(items: int, answered: int, sees: bool) -> None:
    assert student_sees_band(items=items, answered=answered) is sees


def test_nothing_answered_shows_no_band_even_of_an_empty_section() -> None:
    assert student_sees_band(items=0, answered=0) is False
