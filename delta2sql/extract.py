"""Read log files into the landing tables: one batch at a time, parsed by DuckDB SQL.

DuckDB reads the `_delta_log` files itself (read_blob / read_parquet; an object store's commits
from the bytes the log holds in memory); the SQL that splits and parses them lives in
`delta2sql/sql/*.sql`. `LogReader` is the DuckDB connection that parses: the
catalog itself when it is DuckDB, else an in-memory DuckDB whose rows are shipped in bulk to the
catalog. Which batches to land, and the transactions around them, are `delta2sql.runs`' business.
"""

from __future__ import annotations

import array
import atexit
import itertools
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from delta2sql import dbt_ahead
from delta2sql.batches import Batch
from delta2sql.catalog import CatalogConnection, connect_duckdb
from delta2sql.errors import DeltaLogError, UnsupportedTableError
from delta2sql.file_digest import digest_file
from delta2sql.log_listing import LogSegment
from delta2sql.project import SQL_DIR
from delta2sql.sql_text import sql_identifier, sql_literal

SHIP_ROWS = 50_000  # rows per bulk load into PostgreSQL / SQLite: bounds the Arrow and COPY buffers
# (measured on wide x1 into PostgreSQL: 100,000 gave 22.0 s of landing and 1.67 GB peak, 50,000 19.3 s and 1.35 GB)
WAL_CHECKPOINT_THRESHOLD = "1GB"  # see LogReader
SMALL_CAP_WAL_CHECKPOINT_THRESHOLD = "128MB"  # see LogReader
COPY_BYTES = 8 << 20  # JSON commits are copied into DuckDB this many bytes at a time


def load_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


# A batch's checksum is the sum of this over its landed actions (`migration_batches.checksum`)
ACTION_CHECKSUM = "md5_number_upper(log_file || ':' || line_number || ':' || action_json)"


def land_batch(
    con: duckdb.DuckDBPyConnection,
    segment: LogSegment,
    table_name: str,
    batch: Batch,
    prior_actions: int = 0,
) -> tuple[int, str]:
    """Read one batch, reject bad lines, parse and append its actions in one statement.

    Returns (actions inserted, a checksum of the batch's stored action lines). The
    batch's files are described in `delta_log_files` by the batch that ends them: the last slice
    of a checkpoint file, which adds `prior_actions` (its earlier slices) to the count.
    """
    files = batch.files
    segment.log.fetch(files)  # from an object store: commits into memory, checkpoints into the spool
    row_start, row_end = batch.rows or (0, 2**62)
    is_json = not files[0].name.endswith(".parquet")
    try:
        if is_json:  # small files, split into lines from their bytes; a checkpoint is read by rows
            _read_log_files(con, segment, files)
            _read_commit_lines(con, segment, batch)
            rows_sql, params = load_sql("parse_commit_lines.sql"), {}
        else:
            template = _checkpoint_template(con)
            rows_sql = load_sql("read_checkpoint_rows.sql").replace("/* unknown actions */", _unknown_action_cases(files))
            params = {"files": [template, *(str(f.path) for f in files)], "template": template,
                      "log_dir": str(segment.log.local_dir), "version": batch.first_version,
                      "row_start": row_start, "row_end": row_end}
        # One pass from the files to the landing table: the typed rows are never materialized
        # (0.5M checkpoint rows: 2.6 s through a temp table of them, 1.7-2.1 s without).
        inserted = con.execute(
            f"insert into delta_log_actions with raw_log_rows as ({rows_sql}\n) select * from ({load_sql('parse_actions.sql')}\n)",
            {**params, "table_name": table_name, "source": batch.source},
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise DeltaLogError(f"{segment.log_dir}: cannot read {batch.label}: {str(exc).splitlines()[0]}") from exc

    # One scan of what was just stored, per file: its first version, its actions and the sum of
    # each action's md5 (upper 64 bits), taken with its file and line. Any changed, lost or moved
    # line changes the sum; it streams (no batch-sized string).
    per_file = con.execute(
        f"""
        select log_file, min(version), count(*), sum({ACTION_CHECKSUM})
        from delta_log_actions
        where table_name = $table_name and log_file in (select unnest($names)) and line_number between $first and $last
        group by log_file
        """,
        {"table_name": table_name, "names": [f.name for f in files], "first": row_start + 1, "last": min(row_end, 2**62)},
    ).fetchall()  # fetched to the end: DuckDB refuses new work while a result is pending
    checksum = f"md5sum:{sum(int(total) for *_, total in per_file)}"
    if not batch.describes_files:
        return inserted, checksum
    con.execute(
        f"""
        insert into delta_log_files
        select $table_name, described.log_file,
               case when starts_with(described.log_file, '_staged_commits/') then 'staged_commit' else $file_kind end,
               coalesce(counts.version, $fallback_version),
               described.size_bytes, listed.modification_time, described.sha256,
               coalesce(counts.num_actions, 0) + $prior_actions, described.ends_with_newline, blank.blank_lines,
               listed.etag
        from ({load_sql("describe_log_files.sql") if is_json else _DESCRIBED_BY_PYTHON}) as described
        -- modification times (truncated to milliseconds, as Delta writers record them) and ETags as listed
        inner join (
            select unnest($names) as log_file, unnest($mtimes) as modification_time,
                   unnest(cast($etags as varchar[])) as etag
        ) as listed using (log_file)
        left join (
            select unnest(cast($counted as varchar[])) as log_file, unnest(cast($versions as bigint[])) as version,
                   unnest(cast($counts as bigint[])) as num_actions
        ) as counts using (log_file)
        left join ({load_sql("describe_blank_lines.sql") if is_json else _NO_BLANK_LINES}) as blank using (log_file)
        """,
        {
            "names": [f.name for f in files],
            "mtimes": [f.modification_time_ms for f in files],
            "etags": [f.etag for f in files],
            "counted": [row[0] for row in per_file],
            "versions": [row[1] for row in per_file],
            "counts": [row[2] for row in per_file],
            "table_name": table_name,
            "file_kind": batch.file_kind,
            "fallback_version": batch.first_version,
            "prior_actions": prior_actions,
            **({} if is_json else _described_by_python(files)),
        },
    )
    return inserted, checksum


# A Parquet checkpoint can be gigabytes: its size and sha256 come from reading it in chunks
# (file_digest.py), never from DuckDB holding it whole as one BLOB (a 430 MB checkpoint ran
# the landing out of memory that way).
_DESCRIBED_BY_PYTHON = """
    select unnest($names) as log_file, unnest($sizes) as size_bytes, unnest($digests) as sha256,
           unnest($endings) as ends_with_newline
"""


def _described_by_python(files) -> dict[str, list]:
    digests = [digest_file(f.path) for f in files]
    return {"sizes": [d.size_bytes for d in digests], "digests": [d.sha256 for d in digests],
            "endings": [d.ends_with_newline for d in digests]}


def _read_log_files(con: duckdb.DuckDBPyConnection, segment: LogSegment, files) -> None:
    """The batch's JSON files into the temp table raw_log_files (log_file, content), copied in as
    Arrow tables of about 8 MiB (or one larger file): no more is held outside DuckDB's memory limit
    at once. The log hands over each file's bytes (`take`): read from local disk, or, from an
    object store, the commit it holds in memory and lets go of (writing each to a file for DuckDB
    to read back cost more CPU than fetching it)."""
    log = segment.log
    con.execute("create or replace temp table raw_log_files (log_file varchar, content blob)")
    names, contents, size = [], [], 0
    for f in files:
        names.append(f.name)
        contents.append(log.take(f.name))
        size += len(contents[-1])
        if size >= COPY_BYTES or f is files[-1]:
            con.register("fetched_log_files", pa.table({"log_file": names, "content": _binary_array(contents)}))
            try:
                con.execute("insert into raw_log_files select log_file, content from fetched_log_files")
            finally:
                con.unregister("fetched_log_files")
            names, contents, size = [], [], 0


def _binary_array(contents: list[bytes]) -> pa.Array:
    """An Arrow array over Python-owned buffers: one joined copy, no allocation from Arrow's
    memory pool. Built by pyarrow from the list instead, the arrays of a wide batch stayed in
    the pool (mimalloc) after they were freed: 70 MB more peak RSS than from local disk."""
    offsets = array.array("q", itertools.accumulate(map(len, contents), initial=0))
    return pa.Array.from_buffers(pa.large_binary(), len(contents),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(contents))])


def _read_commit_lines(con: duckdb.DuckDBPyConnection, segment: LogSegment, batch: Batch) -> None:
    """Split the batch's JSON files into the temp table raw_log_lines, one action per row, and
    refuse a line that is no action, naming the file and line.

    The protocol asks for one action per line, but some writers pretty-print an action over
    several lines, and delta-rs and delta-kernel-rs read a commit as a stream of JSON objects.
    A file with lines that are no JSON of their own is therefore read again as such a stream
    (`json_stream_records`); only when that fails too is it refused as truncated or corrupt."""
    con.execute("create or replace temp table raw_log_lines as " + load_sql("read_commit_lines.sql"))
    if batch.source == "checkpoint":  # a V2 checkpoint's JSON top-level file
        con.execute("update raw_log_lines set version = ?", [batch.first_version])
    bad = con.execute(load_sql("find_bad_lines.sql")).fetchall()
    unparsed = {log_file for log_file, _, problem, _ in bad if problem.startswith("is not valid JSON")}
    for log_file in sorted(unparsed):
        text, version = con.execute(
            "select decode(content), (select any_value(version) from raw_log_lines where log_file = $f) "
            "from raw_log_files where log_file = $f", {"f": log_file}).fetchone()
        try:
            records = json_stream_records(text)
        except NotAJsonStream as exc:
            raise DeltaLogError(f"{segment.log_dir / log_file}: line {exc.line_number} is not valid JSON "
                                f"(truncated or corrupt): {exc.excerpt!r}") from None
        con.execute("delete from raw_log_lines where log_file = ?", [log_file])
        con.executemany("insert into raw_log_lines values (?, ?, ?, ?, ?)",
                        [[log_file, version, line_number, line, is_blank] for line_number, line, is_blank in records])
    if unparsed:
        bad = con.execute(load_sql("find_bad_lines.sql")).fetchall()
    if bad:
        log_file, line_number, problem, excerpt = bad[0]
        raise DeltaLogError(
            f"{segment.log_dir / log_file}: line {line_number} {problem}: {excerpt!r}"
            + (f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else "")
        )


_BLANK = " \t\r"
_NO_BLANK_LINES = "select cast(null as varchar) as log_file, cast(null as varchar) as blank_lines where false"


class NotAJsonStream(ValueError):
    """A JSON file that is no stream of JSON values, one or more whole lines each."""

    def __init__(self, line_number: int, excerpt: str) -> None:
        super().__init__(f"line {line_number}")
        self.line_number, self.excerpt = line_number, excerpt


def json_stream_records(text: str) -> list[tuple[int, str, bool]]:
    """(line number, text, is blank) of a JSON file read as a stream of JSON values. Raises
    NotAJsonStream naming the line where a value that does not parse (truncated or corrupt)
    starts, or where a value is followed by something else on its last line.

    A value's text is its whole lines, from the line it starts on to the line it ends on, so the
    records and the blank lines between them rebuild the file; its line number is the 1-based
    line it starts on (ADR 0001)."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # after the final newline
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    records, index = [], 0
    while index < len(lines):
        if lines[index].strip(_BLANK) == "":
            records.append((index + 1, lines[index], True))
            index += 1
            continue
        begin = starts[index] + len(lines[index]) - len(lines[index].lstrip(_BLANK))
        try:
            _, end = decoder.raw_decode(text, begin)
        except ValueError:
            raise NotAJsonStream(index + 1, lines[index][:120]) from None
        last = next(i for i in range(index, len(lines)) if starts[i + 1] > end)  # the line the value ends on
        if text[end:starts[last] + len(lines[last])].strip(_BLANK):
            raise NotAJsonStream(last + 1, lines[last][:120])  # something else follows the value on its line
        records.append((index + 1, "\n".join(lines[index:last + 1]), False))
        index = last + 1
    return records


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# The action columns of a Parquet checkpoint (PROTOCOL.md, "Checkpoint Schema").
CHECKPOINT_ACTIONS = ("add", "remove", "metaData", "protocol", "txn", "domainMetadata", "checkpointMetadata", "sidecar")


def _unknown_action_cases(files) -> str:
    """CASE branches that keep, as `{"<column>": {...}}`, each top-level column of the checkpoint
    files that is no action this reader knows (a newer writer's action: kept verbatim, not lost)."""
    columns = dict.fromkeys(name for f in files for name in pq.read_schema(f.path).names)
    unknown = [c for c in columns if c not in CHECKPOINT_ACTIONS]
    return "\n".join(
        f"when {sql_identifier(c)} is not null then json_object({sql_literal(c)}, {sql_identifier(c)})" for c in unknown)


_TEMPLATES: dict[int, str] = {}


def _checkpoint_template(con: duckdb.DuckDBPyConnection) -> str:
    """Path of the zero-row Parquet file with the full checkpoint schema (written once per process,
    removed when it exits)."""
    if not _TEMPLATES:
        directory = tempfile.mkdtemp(prefix="delta2sql-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "checkpoint_template.parquet"
        con.execute(f"copy ({load_sql('checkpoint_template.sql')}) to '{path}' (format parquet)")
        _TEMPLATES[0] = str(path)
    return _TEMPLATES[0]


# Reader features whose effect on the log this replay understands. Data-level features (column
# mapping, type widening, variants, geospatial types, ...) only change how data files are read,
# not the log: geospatial adds `geometry(<crs>)` / `geography(<crs>, <algorithm>)` column types,
# whose statistics are WKT text in minValues/maxValues (delta-io/delta protocol_rfcs/
# geospatial-types.md); a metadata migration keeps both as text and replays the same way.
SUPPORTED_READER_FEATURES = {
    "columnMapping", "deletionVectors", "timestampNtz", "v2Checkpoint", "vacuumProtocolCheck",
    "typeWidening", "typeWidening-preview", "variantType", "variantType-preview",
    "variantShredding-preview", "variantShredding", "geospatial", "catalogManaged", "catalogOwned-preview",
}


CATALOG_MANAGED_FEATURES = {"catalogManaged", "catalogOwned-preview"}


def check_replayable(con: CatalogConnection, segment: LogSegment, table_name: str) -> None:
    """A replay needs protocol and metaData, and must understand every reader feature; a
    catalog-managed table also needs the version its catalog ratified."""
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
    refusal = protocol_refusal(reader_version, json.loads(features))
    if refusal:
        raise UnsupportedTableError(f"{segment.log_dir}: {refusal} (protocol of version {version})")
    if CATALOG_MANAGED_FEATURES & set(json.loads(features)) and segment.catalog_version is None:
        raise UnsupportedTableError(f"{segment.log_dir}: {catalog_managed_refusal(version)}")


def protocol_refusal(reader_version: int, reader_features: list[str]) -> str | None:
    """Why this replay cannot read a table with this protocol, or None (`assess` says the same)."""
    unknown = sorted(set(reader_features) - SUPPORTED_READER_FEATURES)
    if reader_version > 3 or unknown:
        return "unsupported: " + (f"reader feature {', '.join(unknown)}" if unknown else f"minReaderVersion {reader_version}")
    return None


def catalog_managed_refusal(version: int) -> str:
    """Why a catalog-managed table needs `--catalog-version` (`assess` says the same)."""
    return (f"a catalog-managed table (protocol of version {version}): its newest versions may exist only as staged "
            "commits its catalog ratified; give --catalog-version N, the latest version the catalog ratified (the "
            "same input delta-kernel asks for)")


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class LogReader:
    """The DuckDB connection that parses log batches for one catalog connection.

    On a DuckDB catalog it is the catalog connection, so batches insert straight into the
    landing tables. For PostgreSQL and SQLite it is an in-memory DuckDB (capped, spilling to a
    private temp directory) whose landed rows `ship()` moves to the catalog in bulk and clears.
    """

    def __init__(self, catalog: CatalogConnection, share: float = 1.0) -> None:
        """`share`: of the landing memory cap, for an in-memory reader working beside another."""
        self.catalog = catalog
        self.spill = None
        if catalog.dialect == "duckdb":
            self.con = catalog.raw
        else:
            self.con = connect_duckdb()
            self.spill = tempfile.mkdtemp(prefix="delta2sql-spill-")  # not the cwd
            self.con.execute(f"set temp_directory = '{self.spill}'")
            self.con.execute(load_sql("create_landing_tables.sql"))
        self.con.execute("set preserve_insertion_order = false")  # measured: 5x faster CTAS over many files
        # Bounded memory whatever the table size: DuckDB spills to disk past this (README, benchmark).
        # A child making dbt ready beside the landing (dbt_ahead) counts in the budget; the WAL
        # threshold below is for a cap reduced beside a huge listing (the rows held in this process).
        held = resident_bytes()
        memory_limit, _ = catalog.catalog.landing_memory_limit(held and held + dbt_ahead.held_bytes())
        reduced = catalog.catalog.landing_memory_limit(held)[1]
        self._cap, self._share = memory_limit, share
        self._set_cap(share)
        self.con.execute("set TimeZone = 'UTC'")  # checkpoint timestamps render the same on every machine
        if self.con is catalog.raw:
            # Each batch commits; by default DuckDB also checkpoints the database file whenever its
            # WAL passes 16 MB, i.e. after nearly every batch. One checkpoint when the landing
            # connection closes instead: long ×1 landed in 9.3 s instead of 13.7 s, wide ×1 in
            # 8.3 s instead of 9.7 s. Commits stay durable (the WAL is synced at every commit).
            # Under a cap reduced beside a huge listing, the unflushed rows compete with the cap:
            # 1,000,000 commits landed in 407 s with 1 GB and in 319 s with 128 MB (one run each).
            threshold = SMALL_CAP_WAL_CHECKPOINT_THRESHOLD if reduced else WAL_CHECKPOINT_THRESHOLD
            self.con.execute(f"set checkpoint_threshold = '{threshold}'")

    def _set_cap(self, share: float) -> None:
        self.con.execute(f"set memory_limit = '{int(self._cap * share) >> 20}MB'")

    @contextmanager
    def alone(self):
        """The whole landing cap, for a batch parsed again after it ran out of memory beside the
        other reader, while that one holds nothing: a checkpoint written by delta-rs has row
        groups of 1M rows, and DuckDB reads a column chunk of one as a single block (250 MB on
        the benchmark's wide_delta_rs table, more than half the cap). What the failed parse
        left is dropped first."""
        self._empty()
        self._set_cap(1.0)
        try:
            yield
        finally:
            self._set_cap(self._share)

    def ship(self) -> None:
        if self.con is self.catalog.raw:
            return
        for table in ("delta_log_actions", "delta_log_files"):
            self.catalog.load_arrow_batches(table, self.con.sql(f"select * from {table}").to_arrow_reader(SHIP_ROWS))
        self._empty()

    def _empty(self) -> None:
        for table in ("delta_log_actions", "delta_log_files"):
            self.con.execute(f"drop table if exists {table}")  # frees its memory; a delete kept it (peak RSS 1.34 -> 1.1 GB)
        self.con.execute(load_sql("create_landing_tables.sql"))

    def close(self) -> None:
        if self.con is not self.catalog.raw:
            self.con.close()
            shutil.rmtree(self.spill, ignore_errors=True)
