"""Imports point one way: fetch and parse never pull in the database, parse never HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("aggregator.parse", {"sqlite_utils", "sqlite3", "requests"}),
        ("aggregator.fetch", {"sqlite_utils", "sqlite3", "feedparser"}),
        ("aggregator.poll", {"sqlite_utils", "sqlite3"}),
        ("aggregator.models", {"sqlite_utils", "requests", "feedparser", "bs4"}),
        ("aggregator.schedule", {"sqlite_utils", "requests", "feedparser"}),
    ],
)
def test_module_does_not_import(module: str, forbidden: set[str]) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
    )
    assert not forbidden & loaded
