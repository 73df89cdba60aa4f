"""The CLI as a user runs it: exit codes, one-line errors, output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aggregator.cli import cli
from tests.conftest import DATA

REGISTER = DATA / "e2e" / "theregister.atom"


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def test_invalid_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - url: https://x.example/f\n    intervl: 5m\n")
    result = invoke("--config", str(bad), "fetch")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {bad}, feeds[0] (https://x.example/f).intervl: unknown key; "
        "known: url, name, tags, interval, timeout, max_bytes"
    ]


def test_config_and_db_from_environment(
    httpserver: Any, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    httpserver.expect_request("/f").respond_with_data(
        (DATA / "e2e" / "theregister.atom").read_bytes()
    )
    config = write_config(feeds=[{"url": httpserver.url_for("/f"), "name": "Reg"}])
    other_db = tmp_path / "elsewhere.db"
    env = {"AGGREGATOR_CONFIG": str(config), "AGGREGATOR_DB": str(other_db)}
    assert invoke("fetch", env=env).exit_code == 0
    assert other_db.exists()
    found = invoke("search", "quota", env=env)
    assert "AI quota inflation is no token effort. It’s baked in" in found.output
    stats = invoke("stats", env=env).output
    assert "entries: 3" in stats and "feeds: 1" in stats


def test_digest_formats_and_output_file(
    httpserver: Any, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    httpserver.expect_request("/f").respond_with_data(
        (DATA / "e2e" / "theregister.atom").read_bytes()
    )
    config = write_config(feeds=[{"url": httpserver.url_for("/f"), "name": "Reg"}])
    invoke("--config", str(config), "fetch")
    out = tmp_path / "day.csv"
    result = invoke("--config", str(config), "digest", "--date", "2026-04-20",
                    "--format", "csv", "--output", str(out))  # fmt: skip
    assert result.exit_code == 0 and result.output.strip() == str(out)
    assert out.read_text().splitlines()[0] == "title,url,date,published,feed,author,tags,also_in"
    assert "inflation_ai_quota" in out.read_text()
    nothing = invoke("--config", str(config), "digest", "--date", "2027-01-01")
    assert nothing.exit_code == 0 and nothing.output == ""


def test_unwritable_database_is_one_line_and_exit_1(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = write_config(database=str(blocker / "sub" / "aggregator.db"))
    result = invoke("--config", str(config), "stats")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open database")


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 0
    for command in ("fetch", "digest", "search", "feeds", "stats"):
        assert command in result.stdout


def test_search_with_nothing_to_look_for(write_config: Callable[..., Path]) -> None:
    config = write_config()
    empty = invoke("--config", str(config), "search", "  ")
    assert empty.exit_code == 2 and "QUERY is empty" in empty.output
    quotes = invoke("--config", str(config), "search", '"')
    assert quotes.exit_code == 0 and "no entries match" in quotes.output
