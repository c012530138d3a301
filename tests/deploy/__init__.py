"""Tests of what ships: the Dockerfile, the compose file and `make deploy` (checked without a Docker engine)."""
