"""Tests of the psychometric validation."""
