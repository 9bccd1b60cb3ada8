"""Cut-over and the way back: `finalize` hands a table to the catalog, `rollback` returns it.

finalize: the table must be migrated and built, show no drift against its `_delta_log`, and pass
every validation level; then its latest version is recorded as the cut-over version, after which
writers commit through the catalog (`delta2sql.writer`).

rollback before finalize: the table's catalog rows are deleted, and only its rows.
rollback after finalize: writers are shut out (status `rolling_back`), then every version committed
in the catalog since cut-over is written back
into `_delta_log` as the JSON commit file it would have been (never overwriting a file: an
existing one must hold the very same bytes), delta-rs then has to read the same snapshots as the
catalog (the snapshot and bytes validation levels), and only then is the table marked
`file_based`. A rollback interrupted half-way is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field

from delta2sql import lifecycle
from delta2sql.catalog import Catalog, CatalogConnection
from delta2sql.drift import detect_drift
from delta2sql.errors import Delta2SqlError, ValidationFailed
from delta2sql.lifecycle import CATALOG_OWNED, TableStatus
from delta2sql.log_store import TableLog, open_log, session
from delta2sql.progress import Reporter
from delta2sql.reference import REFERENCE_TABLES, create_reference_tables
from delta2sql.runs import clear_table, open_run
from delta2sql.validate import validate_tables
from delta2sql.writer import CatalogWriter


@dataclass
class CutoverResult:
    table_name: str
    action: str  # finalized | removed | written_back
    version: int | None = None
    written_files: list[str] = field(default_factory=list)


def _state(con: CatalogConnection, table_name: str) -> tuple:
    row = con.execute(
        "select status, latest_version, built_version, finalized_version, table_uri from delta_log_tables "
        "where table_name = ?", [table_name],
    ).fetchone()
    if row is None:
        raise Delta2SqlError(f"not in this catalog: {table_name}")
    return row


def finalize_table(catalog: Catalog, table_name: str, reporter: Reporter) -> CutoverResult:
    with catalog.connect() as con:
        status, latest, built, _, uri = _state(con, table_name)
        unfinished = open_run(con, table_name)
    if unfinished is not None:
        raise Delta2SqlError(f"{table_name}: a migration run is unfinished; finish it with `delta2sql migrate` first")
    if status != TableStatus.MIGRATED or built != latest:
        raise Delta2SqlError(f"{table_name}: only a migrated table can be finalized (status {status}); "
                             "run `delta2sql migrate` first")
    drift = detect_drift(catalog, table_name)
    if drift.findings:
        found = "; ".join(f"{f['kind']}: {f['detail']}" for f in drift.findings)
        migrate = f"delta2sql migrate {shlex.quote(uri)} --name {shlex.quote(table_name)}"
        if {f["kind"] for f in drift.findings} == {"behind"}:
            step = f"catch up with `{migrate}`, then finalize again"
        else:  # landed files changed: a catch-up refuses them, only a re-land takes the log as it is now
            step = f"find out why, then re-land with `{migrate} --full-refresh` and finalize again"
        raise Delta2SqlError(f"{table_name}: refusing to finalize, the log drifted from the catalog ({found}); {step}")
    failed = [c for c in validate_tables(catalog, reporter, [table_name]) if c.failed]
    if failed:
        raise ValidationFailed(f"{table_name}: refusing to finalize, validation failed: "
                               + ", ".join(sorted({c.check_name for c in failed})))
    with catalog.connect() as con:
        lifecycle.finalize(con, table_name, latest)
    reporter.event("finalized", table=table_name, version=latest,
                   message=f"{table_name}: finalized at version {latest}; writers now commit to the catalog")
    return CutoverResult(table_name, "finalized", latest)


def rollback_table(catalog: Catalog, table_name: str, reporter: Reporter) -> CutoverResult:
    with catalog.connect() as con:
        status, latest, built, finalized_version, uri = _state(con, table_name)
        if status not in CATALOG_OWNED:
            create_reference_tables(con)  # DDL first: SQLite's executescript would end the transaction
            con.begin()
            try:
                clear_table(con, table_name)
                for table in (*REFERENCE_TABLES, "validation_results", "validation_runs", "drift_checks"):
                    con.execute(f"delete from {table} where table_name = ?", [table_name])
                con.commit()
            except BaseException:
                con.rollback()
                raise
            reporter.event("rolled_back", table=table_name, message=f"{table_name}: removed from the catalog")
            return CutoverResult(table_name, "removed")
        # writers are refused from here on (they commit only to a 'finalized' table), so no version
        # can be committed in the catalog after the ones written back
        lifecycle.start_rollback(con, table_name)
        status, latest, built, finalized_version, uri = _state(con, table_name)
        with session():
            written = _write_back(con, table_name, open_log(uri), finalized_version, latest)
    if built != latest:  # the comparison with delta-rs reads the catalog tables: build them up to latest
        CatalogWriter(catalog, table_name).refresh(reporter)
    for name in written:
        reporter.event("written_back", table=table_name, log_file=name, message=f"{table_name}: wrote {name}")
    _verify_with_delta_rs(catalog, table_name, reporter)
    with catalog.connect() as con:
        lifecycle.finish_rollback(con, table_name, latest)
    reporter.event("rolled_back", table=table_name, version=latest,
                   message=f"{table_name}: back to file-based at version {latest} "
                           f"({len(written)} catalog commit(s) written to _delta_log, delta-rs agrees)")
    return CutoverResult(table_name, "written_back", latest, written)


def _write_back(con: CatalogConnection, table_name: str, log: TableLog, finalized_version: int,
                latest: int) -> list[str]:
    """Write the catalog commits after cut-over as `_delta_log` JSON files with the store's
    put-if-absent; never overwrite one (a store that cannot do it is refused, log_store.py)."""
    files = con.execute(
        "select log_file, version, sha256, ends_with_newline, modification_time from delta_log_files "
        "where table_name = ? and file_kind = 'catalog_commit' and version > ? and version <= ? order by version",
        [table_name, finalized_version, latest],
    ).fetchall()
    if [v for _, v, *_ in files] != list(range(finalized_version + 1, latest + 1)):
        raise Delta2SqlError(f"{table_name}: the catalog does not hold every version from {finalized_version + 1} "
                             f"to {latest} as a catalog commit; nothing written")
    if files:
        log.require_put_if_absent()
    written = []
    for log_file, version, sha256, ends_with_newline, modification_time in files:
        lines = [line for (line,) in con.execute(
            "select action_json from delta_log_actions where table_name = ? and log_file = ? order by line_number",
            [table_name, log_file],
        ).fetchall()]
        data = "\n".join(lines).encode("utf-8") + (b"\n" if ends_with_newline else b"")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise Delta2SqlError(f"{table_name}: version {version} does not rebuild to the bytes it was committed "
                                 "with; nothing more written")
        if log.put_if_absent(log_file, data):
            written.append(log_file)
            # the commit's time as the catalog recorded it (readers without in-commit timestamps
            # use it); an object store keeps its own last-modified time
            log.set_modification_time(log_file, modification_time)
        elif log.read_bytes(log_file) != data:
            raise Delta2SqlError(f"{log.log_dir / log_file} already exists with other bytes: version {version} was "
                                 "written to the log outside the catalog after cut-over; nothing overwritten, its bytes "
                                 "are kept; resolve by hand")
    return written


def _verify_with_delta_rs(catalog: Catalog, table_name: str, reporter: Reporter) -> None:
    """delta-rs must now read from the files what the catalog holds (snapshots and bytes)."""
    checks = validate_tables(catalog, reporter, [table_name], levels=("snapshot", "bytes"))
    failed = [c for c in checks if c.failed]
    if failed:
        raise ValidationFailed(f"{table_name}: after writing the catalog commits back, the files do not match the "
                               "catalog (" + ", ".join(sorted({c.check_name for c in failed})) + "); the table stays "
                               "finalized")
