"""Tests of item_service: the demo bank, the QA checks, storage and the gRPC API."""
