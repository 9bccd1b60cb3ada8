"""Migrate tables: land each log (resumable batches, see `runs.py`), then build the catalog
tables with dbt.

Tables land independently of each other, `parallel` at a time: one failure does not stop the
others. One dbt build then moves the catalog tables forward for every published table (the
models are incremental: only versions after a table's built version are replayed) and runs
the checks that need no reference reader: the structure tests, and the live files against the
log's own checksums (`.crc` files, `_last_checkpoint`). Only a table whose landing, build and
checks all succeeded is marked `migrated`; `validate` remains the full proof.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

from delta2sql import lifecycle
from delta2sql.catalog import Catalog, CatalogConnection
from delta2sql.dbt_runner import failed_nodes, run_dbt, start_ahead
from delta2sql.errors import CatalogBusy, Delta2SqlError
from delta2sql.landing_schema import create_landing_tables
from delta2sql.log_store import open_log, session, use_storage_options
from delta2sql.names import table_name
from delta2sql.progress import Reporter
from delta2sql.reference import create_reference_tables, load_checksum_reference
from delta2sql.runs import WAIT_POLL_SECONDS, RunOptions, land_table
from delta2sql.test_failures import ALL_TABLES, attribute_build


@dataclass(frozen=True)
class TableSpec:
    path: str | os.PathLike  # a local path or an object store URI (log_store.py)
    name: str
    version: int | None = None
    full_history: bool = False
    catalog_version: int | None = None
    storage_options: dict[str, str] | None = field(default=None, repr=False)  # secrets: never shown

    def __post_init__(self) -> None:  # every way in (CLI, manifest, writer) meets the name policy here
        object.__setattr__(self, "name", table_name(self.name))
        if self.storage_options:
            use_storage_options(self.storage_options, uri=self.path)


@dataclass
class MigrationOutcome:
    name: str
    status: str  # migrated | failed
    mode: str | None = None  # full | catch_up | resume | up_to_date
    error: str | None = None
    replay_start_version: int | None = None
    latest_version: int | None = None
    batches: int = 0
    batches_skipped: int = 0  # committed by an interrupted run this one resumed
    files: int = 0
    actions: int = 0
    bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _land(spec: TableSpec, catalog: Catalog, reporter: Reporter, options: RunOptions,
          lock: threading.Lock | None) -> MigrationOutcome:
    started = time.perf_counter()
    table_options = RunOptions(**{**options.__dict__, "version": spec.version, "full_history": spec.full_history,
                                  "catalog_version": spec.catalog_version})
    try:
        with lock or nullcontext(), _connect(catalog, spec.name, options, reporter) as con:
            result = land_table(con, spec.name, open_log(spec.path), catalog.target, table_options, reporter,
                                on_landing=functools.partial(start_ahead, catalog))
    except Exception as exc:  # noqa: BLE001 - one table's failure (bad log, disk full, lost connection) stops only it
        error = str(exc) if isinstance(exc, Delta2SqlError) else f"unexpected: {exc!r}"
        reporter.event("table_failed", table=spec.name, error=error)  # people read it once, in migration_finished
        return MigrationOutcome(spec.name, "failed", error=error, seconds=time.perf_counter() - started)
    return MigrationOutcome(
        spec.name, "landed", mode=result.mode,
        replay_start_version=result.replay_start_version, latest_version=result.latest_version,
        batches=result.batches, batches_skipped=result.batches_skipped,
        files=result.files, actions=result.actions, bytes=result.bytes, warnings=result.warnings,
        seconds=time.perf_counter() - started,
    )


def _connect(catalog: Catalog, table_name: str, options: RunOptions, reporter: Reporter) -> CatalogConnection:
    """The catalog; with `options.wait`, once the process holding a DuckDB catalog file (another
    migrate, whose run's lease cannot be read meanwhile) lets go of it."""
    waited = False
    while True:
        try:
            return catalog.connect()
        except CatalogBusy as exc:
            if not options.wait:
                raise
            if not waited:
                holder = re.search(r"\(PID (\d+)\)", str(exc))
                owner = f"{socket.gethostname()}:{holder[1]}" if holder else "another process"
                reporter.event("waiting", table=table_name, run_id=None, owner=owner,
                               message=f"{table_name}: waiting for {owner} to close the catalog {catalog.path}")
                waited = True
            time.sleep(WAIT_POLL_SECONDS)


def _load_log_checksums(con: CatalogConnection, names: list[str]) -> None:
    """The `.crc` files and `_last_checkpoint` of the landed tables, for the build's checksum test:
    a catalog the log's own checksums contradict is not called migrated."""
    create_reference_tables(con)
    for name in names:
        row = con.execute("select table_uri, replay_start_version, latest_version from delta_log_tables "
                          "where table_name = ?", [name]).fetchone()
        if row is not None:
            uri, start, latest = row
            load_checksum_reference(con, name, open_log(uri), start, latest)


def _build_threads(catalog: Catalog, landed: list[MigrationOutcome]) -> int | None:
    """Two dbt nodes at a time: one node's SQL runs while dbt renders and sends the next, and a
    build is mostly small nodes. Figures, alternating runs with event times, the build's nodes
    against one at a time:
    - PostgreSQL (each thread its own connection): long x1 3.96-5.18 s against 6.32-7.90 s,
      wide x1 14.2-19.5 s against 16.2-18.7 s;
    - DuckDB (one database, so heavy nodes share its memory limit and spill past it): long x1
      1.94-2.26 s against 2.45-2.83 s, wide x1 3.21-3.85 s against 3.61-4.20 s; the two
      processes' memory summed 905-908 against 892-895 MiB on wide x1, 962 against 960 on wide
      x4. A catch-up of 10 commits on long x1: 1.85 s against 2.27 s.
    Under --memory-limit a full DuckDB build keeps one node at a time: it then runs in this
    process (no dbt child), whose peak the limit is checked against, and two heavy nodes at once
    were not measured there. SQLite has one writer: the profile's one node."""
    if catalog.target == "postgres":
        return 2
    full_build = any(o.mode != "catch_up" for o in landed)
    return 2 if catalog.target == "duckdb" and not (full_build and catalog.memory_limit_bytes) else None


def migrate_tables(
    specs: list[TableSpec],
    catalog: Catalog,
    reporter: Reporter,
    options: RunOptions | None = None,
    parallel: int = 1,
) -> list[MigrationOutcome]:
    with session():  # each log object is read once: landing, then the checksums for the build
        return _migrate_tables(specs, catalog, reporter, options or RunOptions(), parallel)


def _migrate_tables(specs: list[TableSpec], catalog: Catalog, reporter: Reporter, options: RunOptions,
                    parallel: int) -> list[MigrationOutcome]:
    # SQLite has one writer at a time: its tables land one after the other whatever `parallel` says
    lock = threading.Lock() if catalog.target == "sqlite" and parallel > 1 else None
    if parallel > 1 and len(specs) > 1:
        with catalog.connect() as con:  # once, up front: concurrent CREATEs of one table conflict
            create_landing_tables(con)
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            outcomes = list(pool.map(lambda spec: _land(spec, catalog, reporter, options, lock), specs))
    else:
        outcomes = [_land(spec, catalog, reporter, options, lock) for spec in specs]
    landed = [o for o in outcomes if o.status == "landed"]
    if not landed:
        return outcomes
    with catalog.connect() as con:
        needs_build = con.execute(
            "select count(*) from delta_log_tables where built_version is null or built_version < latest_version"
        ).fetchone()[0]
    if not needs_build:  # every table was already built up to its log: nothing for dbt to do
        for outcome in landed:
            outcome.status = "migrated"
        return outcomes

    started = time.perf_counter()
    with catalog.connect() as con:  # what this build will see: writers may publish more meanwhile
        seen = dict(con.execute("select table_name, latest_version from delta_log_tables").fetchall())
        _load_log_checksums(con, [o.name for o in landed])
    # the structure tests and the log's own checksums; the delta-rs and byte checks are `validate`'s,
    # and whether a table has been validated is plain dbt's question (ADR 0004). The unit tests
    # pin the replay SQL on fixed rows, not this table: plain `dbt build` and the test suite run
    # them, a migration does not (3 of the 58 nodes of every catch-up).
    build = run_dbt(["build", "--exclude", "tag:delta_rs", "tag:bytes", "tag:validation_state",
                     "--exclude-resource-type", "unit_test"], catalog, reporter, threads=_build_threads(catalog, landed))
    build_seconds = time.perf_counter() - started
    with catalog.connect() as con:
        failing, warned = attribute_build(con, build.run_results, failed_nodes(build))
        for outcome in landed:
            outcome.seconds += build_seconds
            for warning in warned.get(outcome.name, []) + warned.get(ALL_TABLES, []):  # recorded, not stopping
                outcome.warnings.append(warning)
                reporter.event("warning", table=outcome.name, message=f"{outcome.name}: {warning}")
            problems = failing.get(outcome.name, []) + failing.get(ALL_TABLES, [])
            if problems:
                outcome.status, outcome.error = "failed", "; ".join(problems)
                lifecycle.fail_build(con, outcome.name, outcome.error)
                continue
            lifecycle.record_build(con, outcome.name, seen[outcome.name], build_seconds)
            outcome.status = "migrated"
    return outcomes
