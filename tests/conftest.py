"""Shared fixtures: a loopback HTTP server, a real SQLite file, a feeds.yaml factory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-expected",
        action="store_true",
        help="Rewrite tests/data/**/*.expected.json from the current parser output.",
    )


@pytest.fixture
def update_expected(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-expected"))


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on loopback only, on a free port."""
    return ("127.0.0.1", 0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A real database file; Datasette names the database after its stem."""
    return tmp_path / "aggregator.db"


@pytest.fixture
def write_config(tmp_path: Path, db_path: Path) -> Callable[..., Path]:
    """Write a feeds.yaml in tmp_path: write_config(feeds=[{url, name}], **settings)."""

    def write(feeds: list[dict[str, Any]] | None = None, **settings: Any) -> Path:
        settings.setdefault("database", str(db_path))
        settings.setdefault("digest_dir", str(tmp_path / "digests"))
        path = tmp_path / "feeds.yaml"
        path.write_text(yaml.safe_dump({"settings": settings, "feeds": feeds or []}))
        return path

    return write


def serve_file(httpserver: Any, path: str, file: Path, content_type: str | None = None) -> str:
    """Serve a test feed file at `path`; returns its URL."""
    headers = {}
    headers_file = file.with_name(file.name + ".headers")
    if headers_file.exists():
        for line in headers_file.read_text().splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip()] = value.strip()
    if content_type:
        headers["Content-Type"] = content_type
    httpserver.expect_request(path).respond_with_data(file.read_bytes(), headers=headers)
    return str(httpserver.url_for(path))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
