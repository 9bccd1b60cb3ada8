"""The CLI's own dbt runs (dbt_runner.run_dbt): what they leave in the process and on disk.

They hand dbt the catalog's settings as vars. They used to set the DELTA2SQL_* variables in os.environ around each run and restore them,
while threads of the same process (an object store's downloads, libpq, delta-rs) read it: a
write there races with them, and Python's own iteration of os.environ fails when it changes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping

from conftest import RecordingReporter
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.migrate import TableSpec, migrate_tables


class RecordingEnviron(MutableMapping):
    """os.environ as it was, noting every write."""

    def __init__(self, environ: MutableMapping) -> None:
        self.environ = environ
        self.writes: list[str] = []

    def __getitem__(self, key):
        return self.environ[key]

    def __iter__(self):
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)

    def __setitem__(self, key, value) -> None:
        self.writes.append(key)
        self.environ[key] = value

    def __delitem__(self, key) -> None:
        self.writes.append(key)
        del self.environ[key]

    def copy(self) -> dict:
        return dict(self.environ)


def test_a_migration_builds_the_catalog_without_writing_the_environment(catalog, tmp_path, monkeypatch):
    """The build reaches the catalog's own file or schema (the table is only marked migrated once
    dbt's build of it there succeeded) with os.environ never written, on every engine; and dbt's
    target directory (its manifest, run results and compiled SQL) does not stay behind."""
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    environ = RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())

    assert outcome.status == "migrated", outcome.error
    assert environ.writes == []
    left = [p.name for p in temporary.iterdir()]
    assert [name for name in left if name.startswith("delta2sql-dbt-")] == [], left
    with catalog.connect() as con:
        built = con.execute("select built_version, latest_version from delta_log_tables where table_name = 'orders'")
        built_version, latest_version = built.fetchone()
    assert built_version == latest_version
