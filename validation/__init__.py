"""Psychometric validation: simulated test takers through the real assembly, routing and scoring code."""
