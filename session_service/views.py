"""The STUDENT view of items and passages as session_service hands them out; the policy is toefl_core's."""

from __future__ import annotations

from toefl_core.student_view import student_item, student_passage

__all__ = ["student_item", "student_passage"]
