"""Tests of the JSON gateway."""
