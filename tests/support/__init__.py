"""Helpers shared by the tests: real service processes, tokens, channels."""
