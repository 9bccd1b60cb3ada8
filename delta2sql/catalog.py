"""Where the catalog lives: the connection settings shared by the CLI and dbt.

`profiles/profiles.yml` is the one source of truth for dbt; it reads the environment variables
set here (`DELTA2SQL_TARGET`, `DELTA2SQL_CATALOG`), so the CLI and a plain `dbt build` with the
same variables talk to the same database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from delta2sql.errors import CatalogError

DEFAULT_DUCKDB_CATALOG = "delta2sql.duckdb"
PROJECT_DIR = Path(__file__).resolve().parent.parent  # the dbt project ships beside the package


@dataclass(frozen=True)
class Catalog:
    """A catalog database: which dbt target, and the file for embedded engines."""

    target: str = "duckdb"
    path: Path = Path(DEFAULT_DUCKDB_CATALOG)

    def env(self) -> dict[str, str]:
        """Environment variables profiles.yml reads for this catalog."""
        return {"DELTA2SQL_TARGET": self.target, "DELTA2SQL_CATALOG": str(self.path.resolve())}

    def check(self) -> None:
        """Refuse settings dbt cannot work with, before anything is written."""
        if self.target == "duckdb" and any(q in self.path.stem for q in "'\""):
            # dbt-duckdb names the database after the file stem and does not escape quotes in it
            raise CatalogError(f"catalog file name {self.path.name!r}: quotes are not allowed in a DuckDB catalog's file name")

    def connect(self) -> duckdb.DuckDBPyConnection:
        self.check()
        if self.target != "duckdb":
            raise CatalogError(f"target {self.target!r} is not supported yet (supported: duckdb)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return duckdb.connect(str(self.path))
        except (duckdb.Error, OSError) as exc:
            raise CatalogError(f"cannot open DuckDB catalog {self.path}: {exc}") from exc


def catalog_from_options(target: str | None, catalog: str | None) -> Catalog:
    """Resolve CLI options, falling back to the same environment variables as profiles.yml."""
    target = target or os.environ.get("DELTA2SQL_TARGET", "duckdb")
    path = catalog or os.environ.get("DELTA2SQL_CATALOG", DEFAULT_DUCKDB_CATALOG)
    return Catalog(target=target, path=Path(path))
