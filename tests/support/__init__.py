"""Helpers shared by the tests: tokens and a throwaway PostgreSQL cluster (the services themselves: launcher/)."""
