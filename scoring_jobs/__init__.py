"""Scoring jobs: rescore finished sessions and compute item statistics, as gRPC clients of both services."""
