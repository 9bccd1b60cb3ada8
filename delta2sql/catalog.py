"""Catalog databases: where they are (from profiles/profiles.yml) and how to talk to them.

`profiles/profiles.yml` is the one source of truth for connections. dbt renders it itself; the
CLI renders the same file with the same `env_var()` semantics, after exporting the variables
for the chosen catalog (`DELTA2SQL_TARGET`, `DELTA2SQL_CATALOG`), so both reach the same database.

Every SQL statement the package runs on a catalog is written in DuckDB's dialect and, for
PostgreSQL and SQLite, translated by `delta2sql.transpile` (the one choke point). Bulk loads
go through `load_arrow` / `load_arrow_batches`: binary COPY on PostgreSQL, batched inserts on SQLite,
Arrow scans on DuckDB.
"""

from __future__ import annotations

import functools
import itertools
import os
import queue
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import jinja2
import pyarrow as pa
import yaml

from delta2sql import pg_binary_copy
from delta2sql.errors import CatalogBusy, CatalogError
from delta2sql.project import profiles_dir
from delta2sql.transpile import TARGETS, transpile_sql

# rows per record batch of an Arrow table DuckDB works through, and per chunk of encoded COPY
# data (about 7 MB on the wide benchmark)
ARROW_CHUNK_ROWS = 10_000
DEFAULT_FILES = {"duckdb": "delta2sql.duckdb", "sqlite": "delta2sql.sqlite"}


def in_record_batches(data: pa.Table) -> pa.Table:
    """`data` in record batches of ARROW_CHUNK_ROWS rows. DuckDB scans a registered Arrow table
    one record batch per thread, so a batch of 100,000 rows kept the work on one core: encoding
    the wide benchmark's rows for COPY took 17.0 s that way against 9.1 s, hashing its checkpoint
    rows for validation 7.8 s against 4.1 s."""
    return pa.Table.from_batches(data.to_batches(ARROW_CHUNK_ROWS), data.schema)


def connect_duckdb(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with DuckDB's own progress bar off. Every connection delta2sql opens
    comes from here: DuckDB's Python client draws its bar on stdout for any statement that runs
    past 2 s, and a wide table's landing wrote it between the lines of `migrate --json` and
    across rich's progress. It is a setting of the connection: DuckDB refuses it at connect."""
    con = duckdb.connect(database)
    con.execute("set enable_progress_bar = false")
    return con


def render_profile(target: str, env: dict[str, str]) -> dict:
    """The `target` output of profiles.yml, rendered as dbt renders it from `env` (env_var,
    as_number), with none of the dbt vars the CLI passes its own runs (Catalog.dbt_vars)."""

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise CatalogError(f"profiles.yml needs environment variable {name}")
        return default

    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined)
    jinja.filters["as_number"] = lambda value: int(value)

    def render(value):
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, str) and "{{" in value:
            text = jinja.from_string(value).render(env_var=env_var, var=lambda name, default=None: default)  # no vars
            return int(text) if value.rstrip().endswith("as_number }}") else text
        return value

    profile = yaml.safe_load((profiles_dir() / "profiles.yml").read_text())["delta2sql"]
    outputs = profile["outputs"]
    if target not in outputs:
        raise CatalogError(f"unknown target {target!r}; profiles.yml defines {', '.join(outputs)}")
    return render(outputs[target])


DEFAULT_MEMORY_LIMIT_BYTES = 1 << 30  # without --memory-limit, DuckDB's cap comes from this budget (not enforced)
DUCKDB_SHARE = 0.625  # of it, the landing DuckDB's: 640 MB of 1 GB
# and dbt's: 512 MB of 1 GB. dbt's run may be in a process of its own (dbt_ahead), its Python and
# dbt beside this process's ~190 MiB: wide x1's build peaked at 1,024-1,032 MiB for the two with 640 MB.
DBT_DUCKDB_SHARE = 0.5
LANDING_HEADROOM_BYTES = 200 << 20  # beside DuckDB while landing: a batch's Arrow and Python objects
MIN_DUCKDB_MEMORY_BYTES = 256 << 20


@dataclass(frozen=True)
class Catalog:
    """A catalog database: a dbt target of profiles.yml plus, for embedded engines, its file."""

    target: str = "duckdb"
    path: Path | None = None
    extra_env: dict = field(default_factory=dict, hash=False)  # DELTA2SQL_* settings, e.g. the Postgres schema
    memory_limit_bytes: int | None = None  # --memory-limit: a run stops (resumable) past this peak RSS
    max_rows_per_second: float | None = None  # --max-rows-per-second: landed rows, all writers together

    def env(self) -> dict[str, str]:
        """Environment variables profiles.yml reads for this catalog."""
        values = {"DELTA2SQL_TARGET": self.target, "DELTA2SQL_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
                  **self.extra_env}
        if self.path is not None:
            values["DELTA2SQL_CATALOG"] = str(self.path.resolve())
        return values

    def dbt_vars(self) -> dict[str, dict[str, str]]:
        """The same settings as the dbt var profiles.yml reads them from first, which is how the
        CLI hands them to its dbt runs. dbt renders a var that is a string as Jinja (a catalog in
        a folder named `a{{b` would be another file), and leaves the strings in a mapping as they are."""
        return {"delta2sql_settings": self.env()}

    @property
    def budget_bytes(self) -> int:
        return self.memory_limit_bytes or DEFAULT_MEMORY_LIMIT_BYTES

    @property
    def duckdb_memory_limit(self) -> str:
        """The cap of dbt's DuckDB, its share of the command's budget: past it DuckDB spills to
        disk. Python, pyarrow and dbt take the rest, in one process or two."""
        return f"{int(self.budget_bytes * DBT_DUCKDB_SHARE) >> 20}MB"

    def landing_memory_limit(self, held_bytes: int | None) -> tuple[int, bool]:
        """DuckDB's cap in bytes while landing, beside the `held_bytes` the process already holds,
        and whether it is below DuckDB's share: the share, or what the rest of the budget leaves
        when that is less. A 1,000,000-commit log's listing holds about 0.3 GB of Python objects
        through the whole landing (peak RSS of its migrate into DuckDB 1.30 GB with the share)."""
        share = int(self.budget_bytes * DUCKDB_SHARE)
        room = None if held_bytes is None else self.budget_bytes - held_bytes - LANDING_HEADROOM_BYTES
        if room is None or room >= share:
            return share, False
        return max(min(MIN_DUCKDB_MEMORY_BYTES, share), room), True

    @property
    def settings(self) -> dict:
        return render_profile(self.target, {**os.environ, **self.env()})

    @property
    def description(self) -> str:
        if self.target == "postgres":
            s = self.settings
            return f"postgresql://{s['user']}@{s['host']}:{s['port']}/{s['dbname']} schema {s['schema']}"
        return str(self.path)

    def check(self) -> None:
        """Refuse settings dbt cannot work with, before anything is written. dbt-duckdb is given the
        resolved path (`env`), and names the database after it read as a URL, where DuckDB opens
        the file: in `a#b/lake.duckdb` it found database "a", and the build failed after the landing."""
        if self.target != "duckdb":
            return
        path = str(self.path.resolve())
        database = _database_name(os.path.basename(path))
        if any(q in database for q in "'\""):  # dbt-duckdb does not escape quotes in the name
            raise CatalogError(f"catalog file name {os.path.basename(path)!r}: quotes are not allowed in a DuckDB "
                               "catalog's file name before its first dot")
        as_url = _database_name(os.path.basename(urllib.parse.urlparse(path).path))
        if as_url != database:
            raise CatalogError(f"catalog path {path!r}: dbt-duckdb reads a DuckDB catalog's path as a URL, where '#', "
                               f"'?' and ';' end it, and would name the database {as_url!r}, not {database!r}: "
                               "rename or move the file")

    def connect(self, create: bool = True) -> CatalogConnection:
        """A connection; with `create=False` a PostgreSQL schema that does not exist is not created
        (file catalogs are checked for existence before, by delta2sql.catalog_state)."""
        self.check()
        if self.target == "duckdb":
            return DuckDBCatalog(self)
        if self.target == "postgres":
            return PostgresCatalog(self, create)
        if self.target == "sqlite":
            return SQLiteCatalog(self)
        raise CatalogError(f"target {self.target!r} is not supported (supported: {', '.join(TARGETS)})")


def _database_name(file_name: str) -> str:
    """The name DuckDB, and dbt-duckdb, give the database in `file_name`: up to its first dot."""
    return file_name.lstrip(".").split(".")[0]


def catalog_from_options(target: str | None, catalog: str | None) -> Catalog:
    """Resolve CLI options, falling back to the same environment variables as profiles.yml."""
    target = target or os.environ.get("DELTA2SQL_TARGET", "duckdb")
    if target == "postgres":
        return Catalog(target=target)
    path = catalog or os.environ.get("DELTA2SQL_CATALOG") or DEFAULT_FILES.get(target, "delta2sql.db")
    return Catalog(target=target, path=Path(path))


class CatalogConnection:
    """One connection to a catalog; statements are DuckDB SQL with `?` parameters."""

    dialect = "duckdb"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def sql(self, statement: str) -> str:
        return _translate(statement, self.dialect)

    def execute(self, statement: str, params=()):
        raise NotImplementedError

    def executemany(self, statement: str, rows) -> None:
        raise NotImplementedError

    def execute_script(self, statements: str) -> None:
        """Several `;`-separated statements without parameters (DDL)."""
        self.execute(statements)

    def fetch_arrow(self, statement: str, params, schema: pa.Schema) -> pa.Table:
        """A query's rows as Arrow columns of `schema`, in the query's column order."""
        rows = self.execute(statement, params).fetchall()
        return pa.table([pa.array([row[i] for row in rows], field.type) for i, field in enumerate(schema)], schema=schema)

    def load_arrow(self, table: str, data: pa.Table) -> None:
        """Append `data` (columns named as in `table`) in bulk."""
        raise NotImplementedError

    def load_arrow_batches(self, table: str, batches: Iterable[pa.RecordBatch]) -> None:
        """Append a stream of record batches (each bounded by the producer) in bulk."""
        for batch in batches:
            self.load_arrow(table, pa.Table.from_batches([batch]))

    def analyze(self, tables: tuple[str, ...]) -> None:
        """Refresh planner statistics after a bulk load (PostgreSQL plans joins from them)."""

    def flush(self) -> None:
        """Write what was landed to the database file now rather than when the connection closes
        (DuckDB checkpoints its write-ahead log then: 7 s for the 1.8M actions and 470 MB of log of
        the benchmark's wide_delta_rs table), so the landing's recorded time includes it."""

    def relation_exists(self, name: str) -> bool:
        """Whether the catalog has a table or view `name` (the dbt-built ones exist after a build)."""
        return self.execute(
            "select count(*) from information_schema.tables where table_schema = current_schema() and table_name = ?",
            [name],
        ).fetchone()[0] > 0

    def columns(self, table: str) -> list[str]:
        """The column names of `table` in the catalog, in order."""
        return list(self.column_types(table))

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> data type as the catalog's information_schema names it, in order."""
        return dict(self.execute(
            "select column_name, data_type from information_schema.columns where table_schema = current_schema() "
            "and table_name = ? order by ordinal_position", [table]).fetchall())

    def begin(self) -> None:
        self.execute("begin transaction")

    def commit(self) -> None:
        self.execute("commit")

    def rollback(self) -> None:
        self.execute("rollback")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.lru_cache(maxsize=512)
def _translate(statement: str, dialect: str) -> str:
    return transpile_sql(statement, dialect, pretty=False) if dialect != "duckdb" else statement


class DuckDBCatalog(CatalogConnection):
    dialect = "duckdb"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        try:
            self.raw = connect_duckdb(str(catalog.path))
        except (duckdb.Error, OSError) as exc:
            busy = isinstance(exc, duckdb.IOException) and "Conflicting lock" in str(exc)
            raise (CatalogBusy if busy else CatalogError)(f"cannot open DuckDB catalog {catalog.path}: {exc}") from exc

    def execute(self, statement: str, params=()):
        return self.raw.execute(statement, params)

    def executemany(self, statement: str, rows) -> None:
        self.raw.executemany(statement, rows)

    def flush(self) -> None:
        try:
            self.raw.execute("checkpoint")
        except duckdb.TransactionException:  # `--parallel`: another table's batch is being written;
            pass  # DuckDB checkpoints when the last connection closes, as it did before

    def fetch_arrow(self, statement: str, params, schema: pa.Schema) -> pa.Table:
        """Columnar from DuckDB itself: no Python object per value (1.9M checkpoint rows in validation)."""
        return self.raw.sql(statement, params=params).to_arrow_table().rename_columns(schema.names).cast(schema)

    def load_arrow(self, table: str, data: pa.Table) -> None:
        self.raw.register("_delta2sql_batch", data)
        try:
            self.raw.execute(f"insert into {table} by name select * from _delta2sql_batch")
        finally:
            self.raw.unregister("_delta2sql_batch")


class PostgresCatalog(CatalogConnection):
    dialect = "postgres"

    def __init__(self, catalog: Catalog, create: bool = True) -> None:
        super().__init__(catalog)
        import psycopg

        s = catalog.settings
        self.schema = s["schema"]
        try:
            self.raw = psycopg.connect(
                host=s["host"], port=s["port"], user=s["user"], password=s.get("password") or None,
                dbname=s["dbname"], autocommit=True, connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            raise CatalogError(
                f"cannot connect to PostgreSQL {catalog.description}: {str(exc).strip()} "
                "(set PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)"
            ) from exc
        try:
            if create:
                self.raw.execute(f'create schema if not exists "{self.schema}"')
            self.raw.execute(f'set search_path to "{self.schema}"')
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CatalogError(f"PostgreSQL user {s['user']} may not use schema {self.schema}: {exc}") from exc

    def execute(self, statement: str, params=()):
        return self.raw.execute(self._with_params(statement, params), params or None)

    def executemany(self, statement: str, rows) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(self._with_params(statement, True), rows)

    def _with_params(self, statement: str, params) -> str:
        """sqlglot renders `?` as psycopg's `%s`; a literal `%` must then be doubled."""
        sql = self.sql(statement)
        return re.sub(r"%(?!s\b)", "%%", sql) if params else sql

    def begin(self) -> None:
        self.raw.execute("begin")

    def analyze(self, tables: tuple[str, ...]) -> None:
        for table in tables:
            self.raw.execute(f'analyze "{table}"')

    def load_arrow(self, table: str, data: pa.Table) -> None:
        self.load_arrow_batches(table, data.to_batches())

    def load_arrow_batches(self, table: str, batches: Iterable[pa.RecordBatch]) -> None:
        """One COPY ... FROM STDIN in PostgreSQL's binary format, encoded by DuckDB (pg_binary_copy).

        A thread draws the next batch and encodes it while the server ingests the one before
        (DuckDB and libpq both release the GIL); at most a few chunks of encoded rows are held.
        """
        types = self.column_types(table)
        ready: queue.Queue = queue.Queue(maxsize=2)  # encoded chunks, not yet sent
        stop = threading.Event()

        def encode(first: pa.RecordBatch, rest: Iterable[pa.RecordBatch]) -> None:
            scratch = connect_duckdb()
            try:
                scratch.execute("set preserve_insertion_order = false")  # a row's bytes are whole: order is free
                query = pg_binary_copy.rows_sql("batch", [(c, types[c]) for c in first.schema.names])
                for batch in itertools.chain([first], rest):
                    if stop.is_set():
                        break
                    scratch.register("batch", in_record_batches(pa.Table.from_batches([batch])))
                    for chunk in scratch.sql(query).to_arrow_reader(ARROW_CHUNK_ROWS):
                        ready.put(pg_binary_copy.payload(chunk.column(0)))
                    scratch.unregister("batch")
            finally:
                scratch.close()
                ready.put(None)

        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return
        missing = [c for c in first.schema.names if c not in types]
        if missing:
            raise CatalogError(f"{self.schema}.{table} has no column {', '.join(missing)}")
        columns = ", ".join(f'"{c}"' for c in first.schema.names)
        drained = False
        with ThreadPoolExecutor(1) as pool:
            encoder = pool.submit(encode, first, batches)
            try:
                with self.raw.cursor().copy(f'copy "{table}" ({columns}) from stdin (format binary)') as copy:
                    copy.write(pg_binary_copy.HEADER)
                    while (rows := ready.get()) is not None:
                        copy.write(rows)
                    drained = True
                    encoder.result()  # the encoder's own error (a failed read): the COPY fails with it
                    copy.write(pg_binary_copy.TRAILER)
            except BaseException:
                stop.set()  # and drain, so the encoder never blocks on a full queue
                while not drained and ready.get() is not None:
                    pass
                raise


class SQLiteCatalog(CatalogConnection):
    dialect = "sqlite"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        try:
            self.raw = sqlite3.connect(str(catalog.path), isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(f"cannot open SQLite catalog {catalog.path}: {exc}") from exc

    def execute(self, statement: str, params=()):
        return self.raw.execute(self.sql(statement), params)

    def executemany(self, statement: str, rows) -> None:
        self.raw.executemany(self.sql(statement), rows)

    def execute_script(self, statements: str) -> None:
        self.raw.executescript(self.sql(statements))

    def relation_exists(self, name: str) -> bool:
        return self.raw.execute("select count(*) from sqlite_master where name = ?", [name]).fetchone()[0] > 0

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.raw.execute("select * from pragma_table_info(?)", [table]).fetchall()]

    def load_arrow(self, table: str, data: pa.Table, batch_rows: int = 10_000) -> None:
        columns = ", ".join(f'"{c}"' for c in data.column_names)
        marks = ", ".join("?" for _ in data.column_names)
        statement = f'insert into "{table}" ({columns}) values ({marks})'
        for batch in data.to_batches(max_chunksize=batch_rows):
            self.raw.executemany(statement, zip(*(column.to_pylist() for column in batch.columns)))
