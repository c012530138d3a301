"""The process tuning shared by the services' entry points."""

from __future__ import annotations

import importlib
import inspect
import platform

import pytest

from toefl_core.server import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the arena cap is a glibc setting")
def test_arena_cap_is_applied_on_glibc() -> None:
    assert limit_malloc_arenas() is True


def test_each_service_entry_point_caps_arenas_before_serving() -> None:
    # The cap must be set before the services start their threads: their main() calls it right after logging.
    for package in ("item_service", "session_service", "gateway"):
        source = inspect.getsource(importlib.import_module(f"{package}.__main__").main)
        assert "limit_malloc_arenas()" in source, package
