"""The landing and run tables of a catalog, created, or brought up to date when an earlier
delta2sql wrote them.

`create_landing_tables.sql` is the one declaration. `create table if not exists` leaves a table of
an older catalog as it was, so a column added since (an object's ETag, a run's lease) is added
here, empty, with the declared type: old rows simply have none. Columns are only ever added, never
changed or dropped, so a catalog stays readable by the version that wrote it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import sqlglot
from sqlglot import exp

from delta2sql.catalog import CatalogConnection
from delta2sql.extract import load_sql

SCHEMA_LOCK = (1681028977, 1)  # PostgreSQL advisory lock key: creating the catalog's tables


@contextmanager
def schema_lock(con: CatalogConnection):
    """Creators of the catalog's tables in turn: concurrent `create table if not exists` of one
    table conflict on PostgreSQL (pg_type), across processes as well as threads."""
    if con.dialect != "postgres":
        yield
        return
    con.raw.execute("select pg_advisory_lock(%s, %s)", SCHEMA_LOCK)
    try:
        yield
    finally:
        con.raw.execute("select pg_advisory_unlock(%s, %s)", SCHEMA_LOCK)


def create_landing_tables(con: CatalogConnection) -> None:
    con.execute_script(load_sql("create_landing_tables.sql"))
    for table, columns in declared_columns().items():
        present = set(con.columns(table))
        for name, data_type in columns:
            if name not in present:
                con.execute(f"alter table {table} add column {name} {data_type}")


ACTION_TYPE_INDEX = "delta_log_actions_action_type"
INDEX_LOCK_TIMEOUT = "5s"  # waiting for the table's lock past this, the run goes on without the index


def index_landed_actions(con: CatalogConnection) -> str | None:
    """On PostgreSQL, the landed actions indexed by action type, made once a catalog's first
    batches have landed; the landings after keep it up to date. Each staging model of a rare
    action (metaData, protocol, txn, remove, ...) and each node built on one reads the landed
    actions: on a row store, a scan of the whole table per node, 0.45-0.5 s each on wide x1's
    1.9M actions (1.2 GB), 3-25 ms through this index. Made after a catalog's first landing,
    not with the table: kept up to date during the COPY, it costs a landing of wide x1 about
    4 s (every landing after the first pays that), made after it 1 s. DuckDB skips what it need
    not read by itself, and would hold an index in memory.

    Returns why it could not be made (a role that does not own the table, a lock not granted
    within INDEX_LOCK_TIMEOUT): the run goes on without it, since it only speeds up the build,
    and the next run tries again. Once it exists, nothing is locked: `create index if not
    exists` would take a lock that waits for every batch other runs are writing, and holds
    their next batches back while it waits."""
    if con.dialect != "postgres" or _exists(con, ACTION_TYPE_INDEX):
        return None
    import psycopg

    try:
        with schema_lock(con):
            if not _exists(con, ACTION_TYPE_INDEX):  # made by the run that held the lock before
                # PostgreSQL's own statements, not transpiled (sqlglot warns on stderr that it
                # cannot parse `reset`)
                con.raw.execute(f"set lock_timeout = '{INDEX_LOCK_TIMEOUT}'")
                try:
                    con.raw.execute(f"create index if not exists {ACTION_TYPE_INDEX} on delta_log_actions (action_type)")
                finally:
                    con.raw.execute("reset lock_timeout")
    except psycopg.Error as exc:
        return f"no index {ACTION_TYPE_INDEX} (the build reads every landed action per node): {exc}"
    return None


def _exists(con: CatalogConnection, relation: str) -> bool:
    return con.execute("select to_regclass(?) is not null", [relation]).fetchone()[0]


@functools.cache
def declared_columns() -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, DuckDB type)] as `create_landing_tables.sql` declares them."""
    return {
        create.this.this.name: [(c.name, c.args["kind"].sql("duckdb")) for c in create.this.expressions
                                if isinstance(c, exp.ColumnDef)]
        for create in sqlglot.parse(load_sql("create_landing_tables.sql"), read="duckdb")
    }
