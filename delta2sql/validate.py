"""Validate migrated tables: load independent reference data, run the dbt tests, record results.

Levels are dbt tags: `structure` (keys, contiguity, orphan removes, protocol violations),
`snapshot` (live files == delta-rs at sampled versions; counts == `.crc` / `_last_checkpoint`),
`bytes` (log files unchanged, JSON commits rebuilt byte for byte, checkpoint rows equal as typed values).
Results land in `validation_results` (one row per table and check) and come back to the caller.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

from delta2sql.catalog import Catalog, CatalogConnection
from delta2sql.dbt_runner import DbtResult, run_dbt, start_ahead
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import load_sql
from delta2sql.log_file_reference import ReReads
from delta2sql.log_store import TableLog, open_log, session
from delta2sql.progress import Reporter
from delta2sql.reference import (
    create_reference_tables,
    delta_rs_cannot_read,
    load_checkpoint_reference,
    load_checksum_reference,
    load_snapshot_reference,
    sample_versions,
)
from delta2sql.test_failures import ALL_TABLES, findings, is_data_test, node_name

LEVELS = ("structure", "snapshot", "bytes")


@dataclass
class CheckResult:
    table_name: str
    check_name: str
    level: str
    # pass | warn (a finding that does not stop a migration, ADR 0001) | skip (no reference reader
    # for this table: see reference.delta_rs_cannot_read) | fail | error
    status: str
    expected: str
    observed: str
    details: str

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


def _record_references_loaded(catalog: Catalog, tables: list[tuple], levels: tuple[str, ...],
                              checked_at: str) -> None:
    """Say which tables' references are loaded, and at which version, before the tests read them:
    the bytes tests compare only those tables, and plain dbt warns about the others (ADR 0004)."""
    with catalog.connect() as con:
        con.executemany(
            "insert into validation_runs (table_name, validated_version, levels, checked_at) values (?, ?, ?, ?)",
            [[name, latest, ",".join(levels), checked_at] for name, _, _, latest in tables],
        )


def _migrated_tables(con, names: list[str] | None) -> list[tuple]:
    rows = con.execute(load_sql("find_validation_scope.sql")).fetchall()
    if names is not None:
        known = {r[0]: r for r in rows}
        missing = [n for n in names if n not in known]
        if missing:
            raise Delta2SqlError(f"not migrated in this catalog: {', '.join(missing)} (run `delta2sql migrate` first)")
        rows = [known[n] for n in names]
    for table_name, uri, _, _ in rows:
        _require_catalog_commits_on_disk(con, table_name, open_log(uri))
    return rows


def _require_catalog_commits_on_disk(con, table_name: str, log: TableLog) -> None:
    """delta-rs and the byte checks read the files: versions committed in the catalog after
    cut-over can be validated only once `rollback` has written them back."""
    catalog_commits = [log_file for (log_file,) in con.execute(
        "select log_file from delta_log_files where table_name = ? and file_kind = 'catalog_commit' order by version",
        [table_name],
    ).fetchall()]
    on_disk = log.describe(catalog_commits) if catalog_commits else {}
    only_in_catalog = [log_file for log_file in catalog_commits if log_file not in on_disk]
    if only_in_catalog:
        raise Delta2SqlError(
            f"{table_name}: {len(only_in_catalog)} version(s) after cut-over exist only in the catalog (first: "
            f"{only_in_catalog[0]}); no file-based reader can confirm them until `delta2sql rollback` writes them back"
        )


def load_references(catalog: Catalog, tables: list[tuple], levels: tuple[str, ...], num_versions: int,
                    reporter: Reporter, no_reference_reader: dict[str, str],
                    after_delta_rs: Callable[[], None] = lambda: None) -> None:
    """Load each table's reference data. Its log files are re-read on a thread while delta-rs
    reads its snapshots on this one (log_file_reference.py says why, and how that holds little).
    `after_delta_rs` is called once delta-rs has let go of the last table's snapshots, the
    validation's memory peak (or first, when no snapshot is read)."""
    con = catalog.connect()
    try:
        create_reference_tables(con)
        if "snapshot" not in levels:
            after_delta_rs()
        with ReReads() as rereads:
            for number, (table_name, uri, start, latest) in enumerate(tables, start=1):
                log, reread = open_log(uri), None
                if "bytes" in levels:
                    reporter.event("references_loading", table=table_name, level="bytes",
                                   message=f"{table_name}: re-reading the log files from {log.log_dir}")
                    reread = rereads.start(table_name, _landed_log_files(con, table_name), log)
                if "snapshot" in levels:
                    versions = [] if table_name in no_reference_reader else sample_versions(start, latest, num_versions)
                    reporter.event("references_loading", table=table_name, level="snapshot", versions=versions,
                                   message=f"{table_name}: reading snapshots with delta-rs at versions "
                                           f"{', '.join(map(str, versions)) or '(none)'}")
                    for error in load_snapshot_reference(con, table_name, uri, versions):
                        reporter.event("warning", table=table_name, message=f"{table_name}: {error}")
                    if number == len(tables):
                        after_delta_rs()
                    load_checksum_reference(con, table_name, log, start, latest)
                if reread is not None:
                    reread.store(con)
                    load_checkpoint_reference(con, table_name, log)
    finally:
        con.close()


def _landed_log_files(con, table_name: str) -> list[str]:
    return [f for (f,) in con.execute("select log_file from delta_log_files where table_name = ? order by log_file",
                                      [table_name]).fetchall()]


def _results_from_dbt(catalog: Catalog, result: DbtResult, table_names: list[str],
                      no_reference_reader: dict[str, str]) -> list[CheckResult]:
    results = []
    con = catalog.connect()
    try:
        for node in result.run_results:
            if not is_data_test(node):
                continue
            check = node_name(node)
            tags = result.tags[node["unique_id"]]
            level = next((t for t in tags if t in LEVELS), "structure")
            found = findings(con, node) if node["status"] in ("fail", "warn") else []
            for table_name in table_names:
                mine = [f for f in found if f.table_name in (table_name, ALL_TABLES)]
                if "delta_rs" in tags and table_name in no_reference_reader:
                    results.append(CheckResult(table_name, check, level, "skip", "a snapshot read by delta-rs",
                                               no_reference_reader[table_name], ""))
                elif node["status"] == "error":
                    results.append(CheckResult(table_name, check, level, "error", "", "", str(node.get("message"))[:2000]))
                elif mine:
                    first = mine[0].first
                    results.append(CheckResult(
                        table_name, check, level, node["status"], str(first.get("expected")), str(first.get("observed")),
                        f"{sum(f.rows for f in mine)} differing rows; first: " + json.dumps(first, default=str)[:2000],
                    ))
                else:
                    results.append(CheckResult(table_name, check, level, "pass", "no differences", "no differences", ""))
    finally:
        con.close()
    return results


def _loads_references(table_names: list[str], levels: tuple[str, ...], no_reference_reader: dict[str, str]) -> bool:
    """Whether this validation loads references (bytes, or snapshots delta-rs can read), which a
    child making dbt ready for its tests can run beside (dbt_runner.start_ahead): the vars of a
    one-table validation name the table, so the migration's kept parse does not serve them, and
    the tests paid dbt's import and a full parse after the references (3.7 s of the parse alone
    on wide x1). The child starts once delta-rs has let go of its snapshots: its ~135 MiB, held
    until the tests run, would add to delta-rs's peak, which the memory target is measured
    against (wide x4: +486 MiB over delta-rs's own load, against +500)."""
    return "bytes" in levels or ("snapshot" in levels and any(name not in no_reference_reader for name in table_names))


def _landed_bytes(con: CatalogConnection, table_names: list[str]) -> int:
    landed = dict(con.execute("select table_name, sum(size_bytes) from delta_log_files group by table_name").fetchall())
    return sum(landed.get(name) or 0 for name in table_names)


def validate_tables(
    catalog: Catalog,
    reporter: Reporter,
    names: list[str] | None = None,
    levels: tuple[str, ...] = LEVELS,
    num_versions: int = 4,
) -> list[CheckResult]:
    with session():  # each log object re-read once per validation
        return _validate_tables(catalog, reporter, names, levels, num_versions)


def _validate_tables(catalog: Catalog, reporter: Reporter, names: list[str] | None, levels: tuple[str, ...],
                     num_versions: int) -> list[CheckResult]:
    con = catalog.connect()
    try:
        create_reference_tables(con)
        tables = _migrated_tables(con, names)
        no_reference_reader = {name: why for name, *_ in tables if (why := delta_rs_cannot_read(con, name))}
        dbt_vars = {"table_name": tables[0][0]} if len(tables) == 1 else None
        names_found = [t[0] for t in tables]
        ready_dbt = (functools.partial(start_ahead, catalog, _landed_bytes(con, names_found), dbt_vars)
                     if _loads_references(names_found, levels, no_reference_reader) else lambda: None)
    finally:
        con.close()
    if not tables:
        raise Delta2SqlError("no migrated table to validate in this catalog")
    for name, why in no_reference_reader.items():
        reporter.event("warning", table=name, message=f"{name}: {why}")
    load_references(catalog, tables, levels, num_versions, reporter, no_reference_reader,
                    after_delta_rs=ready_dbt)
    checked_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")  # one run, one time
    _record_references_loaded(catalog, tables, levels, checked_at)

    selector = [f"tag:{level}" for level in levels]
    result = run_dbt(["test", "--select", *selector], catalog, reporter, dbt_vars)
    checks = _results_from_dbt(catalog, result, [t[0] for t in tables], no_reference_reader)

    con = catalog.connect()
    try:
        con.executemany(
            "insert into validation_results values (?, ?, ?, ?, ?, ?, ?, ?)",
            [[c.table_name, c.check_name, c.level, c.status, c.expected, c.observed, c.details, checked_at]
             for c in checks],
        )
    finally:
        con.close()
    return checks
