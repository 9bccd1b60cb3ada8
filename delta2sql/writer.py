"""Life after cut-over: writers append versions to a finalized table through the catalog.

    writer = CatalogWriter(catalog, "orders")
    version = writer.commit([{"add": {...}}, {"commitInfo": {...}}], read_version=writer.latest_version())
    writer.refresh()   # move the catalog tables (delta_files, ...) forward: an incremental dbt build

A commit is stored exactly like a landed JSON commit (same parser, same rows), as the file
`<version>.json` would hold it, with `file_kind = 'catalog_commit'`: `rollback` can write it back
into `_delta_log` byte for byte. Concurrency is optimistic, as in Delta itself: a writer names
the version it read; the catalog moves from that version to the next in one compare-and-set,
so of two writers of the same version one commits and the other gets `VersionConflict`.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import duckdb
import psycopg

from delta2sql import lifecycle
from delta2sql.batches import Batch
from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import LogReader, land_batch
from delta2sql.lifecycle import TableStatus
from delta2sql.log_listing import LogFile, LogSegment
from delta2sql.log_store import LocalLog
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.progress import Reporter


class VersionConflict(Delta2SqlError):
    """Another writer committed the version first: re-read the table and retry."""


def encode_commit(actions: list[dict]) -> bytes:
    """The bytes of a JSON commit file: one compact JSON action per line, newline-terminated."""
    if not actions or not all(isinstance(a, dict) and len(a) == 1 for a in actions):
        raise Delta2SqlError("a commit is a non-empty list of actions, each a dict with one key (add, remove, ...)")
    return b"".join(json.dumps(a, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for a in actions)


class CatalogWriter:
    def __init__(self, catalog: Catalog, table_name: str) -> None:
        self.catalog = catalog
        self.table_name = table_name

    def latest_version(self) -> int:
        with self.catalog.connect() as con:
            row = con.execute("select status, latest_version from delta_log_tables where table_name = ?",
                              [self.table_name]).fetchone()
        if row is None or row[0] != TableStatus.FINALIZED:
            raise Delta2SqlError(f"{self.table_name} is not finalized in this catalog "
                                 f"(status {row[0] if row else 'absent'}); writers use the catalog only after cut-over")
        return row[1]

    def commit(self, actions: list[dict], read_version: int) -> int:
        """Commit `actions` as version `read_version + 1`; VersionConflict if it is taken."""
        version = read_version + 1
        data = encode_commit(actions)
        with tempfile.TemporaryDirectory(prefix="delta2sql-commit-") as tmp, self.catalog.connect() as con:
            log_dir = Path(tmp) / "_delta_log"
            log_dir.mkdir()
            path = log_dir / f"{version:020d}.json"
            path.write_bytes(data)
            stat = path.stat()
            log_file = LogFile(log_dir, path.name, version, stat.st_size, stat.st_mtime_ns // 1_000_000)
            segment = LogSegment(LocalLog(tmp), version, None, [log_file], None, {})
            reader = LogReader(con)
            con.begin()
            try:
                if not lifecycle.commit_in_catalog(con, self.table_name, read_version, version):
                    raise VersionConflict(f"{self.table_name}: version {version} was committed by another writer; "
                                          "re-read and retry")
                land_batch(reader.con, segment, self.table_name,
                           Batch(1, (log_file,), "commit", "catalog_commit", version, version))
                reader.ship()
                con.commit()
            except Delta2SqlError:  # VersionConflict included
                con.rollback()
                raise
            except Exception as exc:
                con.rollback()
                if _is_conflict(exc):
                    raise VersionConflict(f"{self.table_name}: version {version} was committed concurrently; "
                                          "re-read and retry") from exc
                raise
            finally:
                reader.close()
        return version

    def refresh(self, reporter: Reporter | None = None) -> None:
        """Build the catalog tables up to the latest committed version (incremental)."""
        with self.catalog.connect() as con:
            (uri,) = con.execute("select table_uri from delta_log_tables where table_name = ?",
                                 [self.table_name]).fetchone()
        [outcome] = migrate_tables([TableSpec(uri, self.table_name)], self.catalog, reporter or Reporter())
        if outcome.status != "migrated":
            raise Delta2SqlError(f"{self.table_name}: refreshing the catalog tables failed: {outcome.error}")


def _is_conflict(exc: Exception) -> bool:
    """Did another writer get this version first? A unique-key violation (PostgreSQL, SQLite) or a
    write-write conflict between transactions (DuckDB); nothing else."""
    return isinstance(exc, (psycopg.errors.UniqueViolation, psycopg.errors.SerializationFailure,
                            sqlite3.IntegrityError, duckdb.ConstraintException, duckdb.TransactionException))
