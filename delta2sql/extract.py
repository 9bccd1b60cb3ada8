"""Land a log segment's raw actions and log files into the catalog's landing tables.

DuckDB reads the `_delta_log` files itself (read_text / read_parquet / read_blob); the SQL that
splits and parses them lives in `delta2sql/sql/*.sql`. Files are read in batches so memory is
bounded by the batch, not by the table. The whole landing of one table is one transaction: a
failure leaves the catalog as it was before.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from delta2sql.catalog import CatalogConnection
from delta2sql.errors import DeltaLogError, UnsupportedTableError
from delta2sql.log_listing import LogFile, LogSegment, v2_sidecar_files
from delta2sql.progress import Reporter

DEFAULT_BATCH_SIZE = 1000  # JSON commit files per batch
SHIP_ROWS = 100_000  # rows per bulk load into PostgreSQL / SQLite: bounds the Arrow and CSV buffers
MEMORY_LIMIT = "640MB"  # DuckDB's share of the 1 GB peak-RSS budget (Python and dbt take the rest)


def load_sql(name: str) -> str:
    return resources.files("delta2sql.sql").joinpath(name).read_text(encoding="utf-8")


@dataclass
class LandingStats:
    files: int = 0
    actions: int = 0
    bytes: int = 0


def land_batch(
    con: duckdb.DuckDBPyConnection,
    segment: LogSegment,
    table_name: str,
    files: list[LogFile],
    source: str,
    file_kind: str,
    checkpoint_version: int | None = None,
    allow_unknown_actions: bool = False,
) -> int:
    """Read one batch of files into `raw_log_rows` (typed), reject bad lines, append the actions."""
    log_dir = str(segment.log_dir)
    paths = [str(f.path) for f in files]
    try:
        con.execute("create or replace temp table raw_log_files as " + load_sql("read_log_files.sql"),
                    {"files": paths, "log_dir": log_dir})
        if files[0].name.endswith(".parquet"):
            template = _checkpoint_template(con)
            con.execute(
                "create or replace temp table raw_log_rows as " + load_sql("read_checkpoint_rows.sql"),
                {"files": [template, *paths], "template": template, "log_dir": log_dir, "version": checkpoint_version},
            )
        else:
            con.execute("create or replace temp table raw_log_lines as " + load_sql("read_commit_lines.sql"))
            if checkpoint_version is not None:  # a V2 checkpoint's JSON top-level file
                con.execute("update raw_log_lines set version = ?", [checkpoint_version])
            bad = con.execute(load_sql("find_bad_lines.sql"), {"allow_unknown_actions": allow_unknown_actions}).fetchall()
            if bad:
                log_file, line_number, problem, excerpt = bad[0]
                raise DeltaLogError(
                    f"{segment.log_dir / log_file}: line {line_number} {problem}: {excerpt!r}"
                    + (f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else "")
                    + ("; rerun with --allow-unknown-actions to keep such actions verbatim" if "unknown action" in problem else "")
                )
            con.execute("create or replace temp table raw_log_rows as " + load_sql("parse_commit_lines.sql"))
    except duckdb.Error as exc:
        names = ", ".join(f.name for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise DeltaLogError(f"{segment.log_dir}: cannot read {names}: {str(exc).splitlines()[0]}") from exc

    inserted = con.execute(
        "insert into delta_log_actions " + load_sql("parse_actions.sql"),
        {"table_name": table_name, "source": source},
    ).fetchone()[0]
    con.execute(
        f"""
        insert into delta_log_files
        select $table_name, described.log_file, $file_kind, coalesce(counts.version, $fallback_version),
               described.size_bytes, listed.modification_time, described.sha256,
               coalesce(counts.num_actions, 0), described.ends_with_newline
        from ({load_sql("describe_log_files.sql")}) as described
        -- modification times as listed (truncated to milliseconds, as Delta writers record them)
        inner join (
            select unnest($names) as log_file, unnest($mtimes) as modification_time
        ) as listed using (log_file)
        left join (
            select log_file, min(version) as version, count(*) as num_actions
            from raw_log_rows group by log_file
        ) as counts using (log_file)
        """,
        {
            "names": [f.name for f in files],
            "mtimes": [f.modification_time_ms for f in files],
            "table_name": table_name,
            "file_kind": file_kind,
            "fallback_version": checkpoint_version if checkpoint_version is not None else files[0].version,
        },
    )
    return inserted


_TEMPLATES: dict[int, str] = {}


def _checkpoint_template(con: duckdb.DuckDBPyConnection) -> str:
    """Path of the zero-row Parquet file with the full checkpoint schema (written once per process)."""
    if not _TEMPLATES:
        path = Path(tempfile.mkdtemp(prefix="delta2sql-")) / "checkpoint_template.parquet"
        con.execute(f"copy ({load_sql('checkpoint_template.sql')}) to '{path}' (format parquet)")
        _TEMPLATES[0] = str(path)
    return _TEMPLATES[0]


def _batches(files: list[LogFile], size: int) -> list[list[LogFile]]:
    return [files[i : i + size] for i in range(0, len(files), size)]


# Reader features whose effect on the log this replay understands. Data-level features (column
# mapping, type widening, variants, ...) only change how data files are read, not the log.
SUPPORTED_READER_FEATURES = {
    "columnMapping", "deletionVectors", "timestampNtz", "v2Checkpoint", "vacuumProtocolCheck",
    "typeWidening", "typeWidening-preview", "variantType", "variantType-preview",
    "variantShredding-preview", "variantShredding",
}


def _check_replayable(con: CatalogConnection, segment: LogSegment, table_name: str) -> None:
    """A replay needs protocol and metaData, and must understand every reader feature."""
    found = dict(
        con.execute(
            """
            select action_type, count(*) from delta_log_actions
            where table_name = ? and source in ('checkpoint', 'commit') and action_type in ('protocol', 'metaData')
            group by action_type
            """,
            [table_name],
        ).fetchall()
    )
    for action in ("protocol", "metaData"):
        if not found.get(action):
            raise DeltaLogError(
                f"{segment.log_dir}: no {action} action in the replayed log "
                f"(versions {segment.replay_start_version}..{segment.latest_version}); not a valid Delta table"
            )
    version, log_file, line_number, is_complete = con.execute(
        """
        select version, log_file, line_number, metadata_id is not null and schema_string is not null
        from delta_log_actions
        where table_name = ? and source in ('checkpoint', 'commit') and action_type = 'metaData'
        order by version desc, line_number desc limit 1
        """,
        [table_name],
    ).fetchone()
    if not is_complete:
        raise UnsupportedTableError(
            f"{segment.log_dir / log_file}: line {line_number}: unsupported: the current metaData (version "
            f"{version}) has no id or schemaString, both required by the protocol"
        )
    version, reader_version, features = con.execute(
        """
        select version, min_reader_version, coalesce(reader_features, '[]') from delta_log_actions
        where table_name = ? and source in ('checkpoint', 'commit') and action_type = 'protocol'
        order by version desc, line_number desc limit 1
        """,
        [table_name],
    ).fetchone()
    unknown = sorted(set(json.loads(features)) - SUPPORTED_READER_FEATURES)
    if reader_version > 3 or unknown:
        what = f"reader feature {', '.join(unknown)}" if unknown else f"minReaderVersion {reader_version}"
        raise UnsupportedTableError(f"{segment.log_dir}: unsupported: {what} (protocol of version {version})")


def land_segment(
    catalog: CatalogConnection,
    segment: LogSegment,
    table_name: str,
    reporter: Reporter,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_unknown_actions: bool = False,
    commit_every: int | None = None,
) -> LandingStats:
    """Replace `table_name`'s landing rows with the actions of `segment`.

    DuckDB reads and parses the log. On a DuckDB catalog it writes the landing tables directly;
    for PostgreSQL and SQLite it parses into an in-memory DuckDB and each batch is shipped in
    bulk (`CatalogConnection.load_arrow`) inside the catalog's transaction.

    By default the whole table is one transaction: a failure leaves the catalog as it was.
    `commit_every=N` commits after every N batches to bound transaction size; the table then
    stays in status 'landing' (never 'landed', so never migrated) until its last batch commits,
    and a failed run leaves it there, to be replaced by the next run.
    """
    catalog.execute_script(load_sql("create_landing_tables.sql"))
    reader = catalog.raw if catalog.dialect == "duckdb" else duckdb.connect()
    spill = None
    if reader is not catalog.raw:
        spill = tempfile.mkdtemp(prefix="delta2sql-spill-")  # an in-memory reader spills here, not in the cwd
        reader.execute(f"set temp_directory = '{spill}'")
        reader.execute(load_sql("create_landing_tables.sql"))
    reader.execute("set preserve_insertion_order = false")  # measured: 5x faster CTAS over many files
    # Bounded memory whatever the table size: DuckDB spills to disk past this (README, benchmark).
    reader.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    reader.execute("set TimeZone = 'UTC'")  # checkpoint timestamps render the same on every machine

    def ship() -> None:
        if reader is catalog.raw:
            return
        for table in ("delta_log_actions", "delta_log_files"):
            for batch in reader.sql(f"select * from {table}").to_arrow_reader(SHIP_ROWS):
                catalog.load_arrow(table, pa.Table.from_batches([batch]))
            reader.execute(f"delete from {table}")

    checkpoint = segment.checkpoint
    checkpoint_files = list(checkpoint.files) if checkpoint else []
    if checkpoint and checkpoint.kind == "v2":
        checkpoint_files += v2_sidecar_files(checkpoint, segment.log_dir)
    extra = [segment.checkpoint_commit] if segment.checkpoint_commit else []
    total_bytes = sum(f.size_bytes for f in checkpoint_files + extra + segment.commits)
    # (files, source, file_kind): checkpoint files one at a time (a part or sidecar bounds the
    # memory of a batch), then the checkpoint version's own commit, then commits in batches.
    steps = [([f], "checkpoint", "sidecar" if f.name.startswith("_sidecars/") else "checkpoint") for f in checkpoint_files]
    steps += [([f], "checkpoint_commit", "checkpoint_commit") for f in extra]
    steps += [(batch, "commit", "commit") for batch in _batches(segment.commits, batch_size)]

    stats = LandingStats()
    catalog.begin()
    try:
        for table in ("delta_log_actions", "delta_log_files", "delta_log_tables"):
            catalog.execute(f"delete from {table} where table_name = ?", [table_name])
        catalog.execute(
            "insert into delta_log_tables values (?, ?, ?, ?, ?, ?, 'landing', ?, null, null)",
            [table_name, str(segment.table_root.resolve()), segment.replay_start_version, segment.latest_version,
             checkpoint.version if checkpoint else None, checkpoint.kind if checkpoint else None,
             json.dumps(segment.warnings)],
        )
        with reporter.task(f"landing {table_name}", total_bytes) as advance:
            for index, (files, source, file_kind) in enumerate(steps, start=1):
                version = checkpoint.version if source == "checkpoint" else None
                n = land_batch(reader, segment, table_name, files, source, file_kind, version, allow_unknown_actions)
                ship()
                size = sum(f.size_bytes for f in files)
                stats.files, stats.actions, stats.bytes = stats.files + len(files), stats.actions + n, stats.bytes + size
                advance(size, files=len(files), actions=n)
                if commit_every and index % commit_every == 0 and index < len(steps):
                    catalog.commit()
                    catalog.begin()
        _check_replayable(catalog, segment, table_name)
        for action_type, log_file, count in catalog.execute(load_sql("find_unknown_actions.sql"), [table_name]).fetchall():
            reporter.event("warning", table=table_name,
                           message=f"{table_name}: kept {count} unknown {action_type!r} action(s) verbatim (first in {log_file})")
        catalog.execute(
            "update delta_log_tables set status = 'landed', landed_at = current_timestamp where table_name = ?", [table_name]
        )
        catalog.commit()
    except BaseException:
        catalog.rollback()
        raise
    finally:
        if reader is not catalog.raw:
            reader.close()
            shutil.rmtree(spill, ignore_errors=True)
    catalog.analyze(("delta_log_actions", "delta_log_files", "delta_log_tables"))
    return stats
