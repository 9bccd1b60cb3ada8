"""Is there a catalog, of the right engine, and what state is a table in, before a command runs?

A misspelled `--catalog` must not become a new empty file, a DuckDB file must not be opened as
SQLite, and a table whose first migration failed must not reach a query on catalog tables that
were never built. Each such case gets a message that says what happened and the one command to
run next, and exit 1: exit 2 stays for real bugs.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from delta2sql.catalog import Catalog, CatalogConnection
from delta2sql.errors import CatalogError
from delta2sql.lifecycle import UNBUILT, TableStatus

ENGINE_NAMES = {"duckdb": "DuckDB", "sqlite": "SQLite", "postgres": "PostgreSQL"}
FILE_SUFFIXES = {"duckdb": {".duckdb", ".ddb"}, "sqlite": {".sqlite", ".sqlite3", ".db"}}


def file_engine(path: Path) -> str | None:
    """The engine that wrote a database file, from its header: `duckdb`, `sqlite`, `empty` (no
    byte yet, which SQLite takes as a new database and DuckDB refuses), or None when neither."""
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from exc
    if header == b"":
        return "empty"
    if header.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if header[8:12] == b"DUCK":
        return "duckdb"
    return None


def check_catalog(catalog: Catalog, creating: bool = False) -> None:
    """Refuse a catalog that is missing (unless `creating`), of another engine, or oddly named."""
    if catalog.target == "postgres":
        if not creating and not catalog_exists(catalog):
            raise CatalogError(f"no catalog in {catalog.description}: set DELTA2SQL_PG_SCHEMA to the schema "
                               "`delta2sql migrate --target postgres` wrote, or migrate a table first")
        return
    path, engine = catalog.path, ENGINE_NAMES[catalog.target]
    if path.is_dir():
        raise CatalogError(f"catalog {path} is a folder; give the {engine} database file inside it")
    if path.exists():
        found = file_engine(path)
        if found == "empty" and catalog.target == "sqlite":  # SQLite's new database: fine
            return
        if found == "empty":
            raise CatalogError(f"{path} is an empty file, not a {engine} database: remove it, or give another --catalog")
        if found is None:
            raise CatalogError(f"{path} is not a {engine} database (nor one of another engine delta2sql knows)")
        if found != catalog.target:
            raise CatalogError(f"{path} is a {ENGINE_NAMES[found]} database, not {engine}: use --target {found}")
        return
    if not creating:
        raise CatalogError(f"no catalog at {path}: check --catalog (or DELTA2SQL_CATALOG); "
                           f"`delta2sql migrate TABLE_PATH --catalog {path}` creates one")
    if not path.parent.is_dir():
        raise CatalogError(f"cannot create catalog {path}: folder {path.parent} does not exist")
    for other, suffixes in FILE_SUFFIXES.items():
        if other != catalog.target and path.suffix.lower() in suffixes:
            raise CatalogError(f"{path.name} names a {ENGINE_NAMES[other]} file, but the target is {engine}: "
                               f"use --target {other}, or a {sorted(FILE_SUFFIXES[catalog.target])[0]} file name")


def catalog_exists(catalog: Catalog) -> bool:
    """Whether a catalog was created there (by `migrate`); creates nothing to find out."""
    if catalog.target != "postgres":
        return catalog.path.exists()
    with catalog.connect(create=False) as con:
        return con.relation_exists("delta_log_tables")


def table_states(con: CatalogConnection) -> dict[str, tuple[str, str]]:
    """Every table the catalog knows: name -> (status, table_uri); empty for an empty catalog."""
    if not con.relation_exists("delta_log_tables"):
        return {}
    return {name: (status, uri) for name, status, uri in
            con.execute("select table_name, status, table_uri from delta_log_tables").fetchall()}


def require_table(catalog: Catalog, table_name: str, built: bool = True) -> str:
    """The table's status; raise with the next step when it is unknown or (if `built`) never built."""
    return require_tables(catalog, [table_name], built)[table_name]


def require_tables(catalog: Catalog, names: list[str], built: bool = True) -> dict[str, str]:
    """name -> status of each named table or, with no names, of every table (at least one of them
    built, if `built`); raise with the next step when one is unknown or (if `built`) never built."""
    with catalog.connect() as con:
        states = table_states(con)
        if not states:
            raise CatalogError(f"catalog {catalog.description} holds no table yet: "
                               "run `delta2sql migrate TABLE_PATH` first")
        for table_name in names:
            if table_name not in states:
                known = ", ".join(sorted(states)[:10]) + (", ..." if len(states) > 10 else "")
                raise CatalogError(f"no table {table_name!r} in catalog {catalog.description} (it holds: {known})")
        chosen = {name: states[name] for name in names} if names else states
        unbuilt = [name for name, (status, _) in sorted(chosen.items()) if status in UNBUILT]
        if built and unbuilt and (names or len(unbuilt) == len(chosen)):
            raise CatalogError(unfinished_migration(con, unbuilt[0], *chosen[unbuilt[0]]))
    return {name: status for name, (status, _) in chosen.items()}


def unfinished_migration(con: CatalogConnection, table_name: str, status: str, uri: str) -> str:
    """What stopped a table short of `migrated`, and the one command that goes on from there."""
    row = con.execute("select status, error from migration_runs where table_name = ? "
                      "order by started_at desc limit 1", [table_name]).fetchone()
    run_status, error = row if row is not None else ("none", None)
    command = f"delta2sql migrate {shlex.quote(uri)} --name {shlex.quote(table_name)}"
    if status == TableStatus.LANDING:
        return (f"{table_name}: its first migration has not finished (last run {run_status}"
                f"{': ' + error if error else ''}); `{command}` resumes it")
    return (f"{table_name}: landed but not migrated, a check failed ({error or 'see delta2sql status'}); "
            f"once the cause is fixed, `{command}` builds it again, or `delta2sql rollback {shlex.quote(table_name)}` "
            "removes it")


def discard_if_empty(catalog: Catalog) -> bool:
    """Delete a catalog file that a failed first `migrate` just created and that holds nothing
    to resume (no committed batch): a failure leaves no empty catalog behind to mistake for one."""
    if catalog.target == "postgres" or not catalog.path.exists():
        return False
    with catalog.connect() as con:
        committed = con.relation_exists("migration_batches") and \
            con.execute("select count(*) from migration_batches").fetchone()[0] > 0
    if committed:
        return False
    for leftover in (catalog.path, catalog.path.with_name(catalog.path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    return True

