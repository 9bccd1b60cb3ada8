"""Run dbt in-process (dbtRunner) against a catalog, one invocation at a time.

Each invocation gets its own target/log directory so that concurrent runs against different
catalogs (tests, a fleet of tables) never share dbt's manifest or run_results.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from delta2sql import dbt_ahead, dbt_parses
from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
from delta2sql.progress import Reporter
from delta2sql.project import profiles_dir, project_dir


@dataclass
class DbtResult:
    success: bool
    run_results: list[dict]  # run_results.json "results"
    tags: dict[str, list[str]]  # each node's dbt tags, by unique_id


# dbt keeps global state (flags, adapters, its invocation context): one invocation per process
_IN_THIS_PROCESS = threading.Lock()
_BUILD_LOCK = 1681028977  # advisory lock class of delta2sql's dbt runs; the catalog's schema is the object


@contextmanager
def _one_at_a_time(catalog: Catalog):
    """One dbt run at a time in this process and, on PostgreSQL, per catalog across every process
    and machine (workers): concurrent builds of the same incremental models would conflict. The
    lock is a session's advisory lock, so a killed holder's lock goes with its connection."""
    with _IN_THIS_PROCESS:
        if catalog.target != "postgres":
            yield
            return
        with catalog.connect() as con:
            key = [_BUILD_LOCK, con.schema]
            con.raw.execute("select pg_advisory_lock(%s, hashtext(%s))", key)
            try:
                yield
            finally:
                con.raw.execute("select pg_advisory_unlock(%s, hashtext(%s))", key)


# Parsed projects kept by a resident process (keep_parsed_projects), by what the parse depends on,
# the most recently used last. A one-table validation's vars name the table, so a sync of a fleet
# would keep one per table it ever validated (~3.5 MiB each, measured): the oldest go past the limit.
_PARSED: OrderedDict[tuple, object] | None = None
KEPT_PARSED_PROJECTS = 16


def keep_parsed_projects() -> None:
    """For a process that runs dbt again and again (`sync --every`, `worker`): each catalog's
    project is parsed once and handed to every later invocation (dbtRunner(manifest=...)), which
    spares dbt's parse and one manifest write per run (~0.7 s of a 4.3 s catch-up of long x1).
    One-shot commands do not keep it: the first parse costs a dbt invocation of its own."""
    global _PARSED
    if _PARSED is None:
        _PARSED = OrderedDict()


def run_dbt(command: list[str], catalog: Catalog, reporter: Reporter, dbt_vars: dict | None = None,
            threads: int | None = None) -> DbtResult:
    """Run `dbt <command>` for `catalog`; raise only when dbt itself could not run. `threads`
    overrides the profile's one node at a time.

    The catalog's settings reach dbt as vars (profiles.yml reads them before the environment),
    not through os.environ, which threads still running beside the build (an object store's
    downloads, libpq) read: setting and restoring it around dbt raced with them."""
    target_path = Path(tempfile.mkdtemp(prefix="delta2sql-dbt-"))
    try:
        return _run_dbt(command, catalog, reporter, dbt_vars, threads, target_path)
    finally:  # 3 MB a run, left behind until 2026-12-06: one per pass of a resident `sync --every`
        shutil.rmtree(target_path, ignore_errors=True)


def _run_dbt(command: list[str], catalog: Catalog, reporter: Reporter, dbt_vars: dict | None, threads: int | None,
             target_path: Path) -> DbtResult:
    vars_text = _all_vars_text(catalog, dbt_vars)
    options = [*_options(catalog, vars_text), "--target-path", str(target_path), "--log-path", str(target_path / "logs")]
    options += ["--threads", str(threads)] if threads else []

    def on_node(unique_id: str, status: str) -> None:
        reporter.event("dbt_node", node=unique_id, status=status)

    child = dbt_ahead.take(catalog.target, vars_text)  # waited for before the lock: other runs need not wait
    try:
        with _one_at_a_time(catalog):
            outcome = dbt_ahead.give(child, [*command, *options], on_node) if child is not None else None
            if outcome is None:
                outcome = _run_here(command, catalog, options, vars_text, target_path, on_node)
    except BaseException:
        if child is not None:  # stopped already, unless the lock could not be taken
            child.stop()
        raise
    results_file = target_path / "run_results.json"
    if outcome.exception is not None or not results_file.exists():
        raise Delta2SqlError(f"dbt {' '.join(command)} could not run: {outcome.exception}")
    run_results = json.loads(results_file.read_text())["results"]
    dbt_parses.keep(target_path, catalog.target, vars_text)
    return DbtResult(success=outcome.success, run_results=run_results, tags=outcome.tags)


def _run_here(command: list[str], catalog: Catalog, options: list[str], vars_text: str, target_path: Path,
              on_node) -> dbt_ahead.Outcome:
    """The run in this process, from the parse kept for these vars if there is one."""
    dbt_parses.seed(target_path, catalog.target, vars_text)
    manifest = _parsed_project(catalog, options, vars_text)
    # imported here: commands that run no dbt (assess, status) start 2 s sooner
    from dbt.cli.main import dbtRunner

    try:
        result = dbtRunner(manifest=manifest, callbacks=[dbt_ahead.node_callback(on_node)]).invoke([*command, *options])
    finally:
        if catalog.target == "duckdb":
            _let_go_of_duckdb()
    return dbt_ahead.outcome_of(result)


def _let_go_of_duckdb() -> None:
    """Close the DuckDB catalog dbt-duckdb keeps open after a run (its profile's `keep_open`, on
    by default): open, it stays locked against every other process. A resident `sync --every`
    held it between passes, where nobody could query the catalog or run `delta2sql status` on
    it, and a later run's child could not open it. The next run here opens it again (~20 ms).
    Closing its connection closes dbt-duckdb's cursors on it too."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # noqa: BLE001 - dbt-duckdb raises a bare Exception when no run opened one
        return
    try:
        environment.close()
    except duckdb.Error:  # the run's outcome stands; a process that then finds the file held says so
        pass


def start_ahead(catalog: Catalog, log_bytes: int, dbt_vars: dict | None = None) -> None:
    """Make dbt ready for the next run of `catalog` in a child process (dbt_ahead) while
    `log_bytes` of log land or are re-read. `dbt_vars`: the run's own vars, as it will give them
    to run_dbt (None for a build). Only when that work can hide the child: it takes ~6 s, where a
    small landing ends in a second and the run would wait for it (dbt_ahead.MIN_BYTES). Not
    under a memory limit: the child's ~135 MiB while it waits, and its build's, are not this
    process's, which the limit is checked against, yet they are the command's. Not in a resident
    process, which has dbt imported and keeps each catalog's parse in memory
    (keep_parsed_projects)."""
    if _PARSED is not None or catalog.memory_limit_bytes or log_bytes < dbt_ahead.MIN_BYTES:
        return
    vars_text = _all_vars_text(catalog, dbt_vars)
    dbt_ahead.start(_options(catalog, vars_text), catalog.target, vars_text)


def _options(catalog: Catalog, vars_text: str) -> list[str]:
    return ["--project-dir", str(project_dir()), "--profiles-dir", str(profiles_dir()), "--target", catalog.target,
            "--log-level", "none", "--vars", vars_text]


def _all_vars_text(catalog: Catalog, dbt_vars: dict | None) -> str:
    """The run's vars: the catalog's settings (profiles.yml) and the command's own."""
    return _vars_text({**catalog.dbt_vars(), **(dbt_vars or {})})


def _parsed_project(catalog: Catalog, options: list[str], vars_text: str):
    """The kept parse of the project for this catalog and these vars (relations are named after
    the catalog's schema or file, and the vars are compiled in), parsing it now if needed; None
    when no parse is kept or dbt could not parse (the run then parses, and reports, itself)."""
    if _PARSED is None:
        return None
    key = (catalog.target, vars_text)
    if key in _PARSED:
        _PARSED.move_to_end(key)
        return _PARSED[key]
    from dbt.cli.main import dbtRunner

    parsed = dbtRunner().invoke(["parse", *options])
    if not parsed.success:
        return None
    _PARSED[key] = parsed.result
    while len(_PARSED) > KEPT_PARSED_PROJECTS:
        _PARSED.popitem(last=False)
    return parsed.result


def _vars_text(dbt_vars: dict) -> str:
    """`dbt_vars` as the YAML dbt's `--vars` reads (libyaml): JSON, with every character outside
    printable ASCII written as a YAML escape. json.dumps would write an emoji as a UTF-16
    surrogate pair, which libyaml refuses; raw, a C1 control or U+FFFF is refused too."""
    text = json.dumps(dbt_vars, ensure_ascii=False)
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in text)


def failed_nodes(result: DbtResult) -> list[dict]:
    """Nodes that did not succeed: errors, failed tests and whatever was skipped because of them."""
    return [r for r in result.run_results if r["status"] not in ("success", "pass", "warn")]


def plain_dbt_command(catalog: Catalog) -> str:
    """The shell command that runs plain dbt on `catalog` from any directory: the same models
    and tests, the same profile, with the environment variables for the settings the CLI hands
    its own dbt runs as vars."""
    variables = " ".join(f"{name}={shlex.quote(value)}" for name, value in catalog.env().items())
    return (f"{variables} dbt build --project-dir {shlex.quote(str(project_dir()))} "
            f"--profiles-dir {shlex.quote(str(profiles_dir()))}")

