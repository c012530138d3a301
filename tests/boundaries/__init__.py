"""Tests that the two databases stay apart at every layer."""
