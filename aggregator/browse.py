"""Browse the database with Datasette: the packaged metadata, and the `serve` command.

Datasette names a database after its file's stem, and metadata.yml describes one called
`aggregator`; a database file with another name gets the same metadata under its own name.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aggregator.store import Store

DATABASE_NAME = "aggregator"


def metadata_path() -> Path:
    """metadata.yml as a file on disk, for `datasette DB -m PATH` (installed package or
    source checkout; an egg in a zip file is not supported)."""
    return Path(str(resources.files("aggregator").joinpath("datasette", "metadata.yml")))


@functools.cache
def _packaged_metadata() -> dict[str, Any]:
    text = metadata_path().read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def metadata(database_name: str = DATABASE_NAME) -> dict[str, Any]:
    """The packaged metadata, describing the database Datasette will call `database_name`."""
    data = copy.deepcopy(_packaged_metadata())
    if database_name != DATABASE_NAME:
        data["databases"] = {database_name: data["databases"].pop(DATABASE_NAME)}
    return data


def datasette(database: Path, **settings: Any) -> Any:
    """A Datasette instance on `database` with our metadata. The schema (migrations,
    full-text index, views) is brought up to date first: Datasette only reads."""
    from datasette.app import Datasette

    with Store.open(database):
        pass
    return Datasette([str(database)], metadata=metadata(database.stem), settings=settings)


def serve(database: Path, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve `database` until interrupted, as `datasette serve` would."""
    import uvicorn

    instance = datasette(database)
    uvicorn.run(instance.app(), host=host, port=port, log_level="info", lifespan="on")
