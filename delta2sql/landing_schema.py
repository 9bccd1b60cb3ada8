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


@functools.cache
def declared_columns() -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, DuckDB type)] as `create_landing_tables.sql` declares them."""
    return {
        create.this.this.name: [(c.name, c.args["kind"].sql("duckdb")) for c in create.this.expressions
                                if isinstance(c, exp.ColumnDef)]
        for create in sqlglot.parse(load_sql("create_landing_tables.sql"), read="duckdb")
    }
