"""Run dbt in-process (dbtRunner) against a catalog, one invocation at a time.

Each invocation gets its own target/log directory so that concurrent runs against different
catalogs (tests, a fleet of tables) never share dbt's manifest or run_results.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
from delta2sql.progress import Reporter
from delta2sql.project import profiles_dir, project_dir


@dataclass
class DbtResult:
    success: bool
    run_results: list[dict]  # run_results.json "results"
    target_path: Path


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# dbt keeps global state (flags, adapters, the environment it reads): one invocation per process
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


# Parses of the project, by what a parse depends on (_parse_key): started ahead of the run that
# needs them (parse_ahead), or kept for every later run by a resident process (keep_parsed_projects).
_PARSES: dict[tuple, Future] = {}
_PARSES_LOCK = threading.Lock()  # tables of a fleet land, and start parses, on threads of their own
_KEEP_PARSES = False


def keep_parsed_projects() -> None:
    """For a process that runs dbt again and again (`sync --every`, `worker`): each catalog's
    project is parsed once and handed to every later invocation (dbtRunner(manifest=...)), which
    spares dbt's parse and one manifest write per run (~0.7 s of a 4.3 s catch-up of long x1)."""
    global _KEEP_PARSES
    _KEEP_PARSES = True


def parse_ahead(catalog: Catalog, dbt_vars: dict | None = None) -> None:
    """Start importing dbt and parsing the project for `catalog` on a thread, for the next
    `run_dbt` on it, while the caller does other work (a migration lands its batches meanwhile:
    DuckDB and the COPY release the GIL). A one-shot migrate otherwise waited 5-6 s for them
    between its last batch and the build's first node: importing dbt 2 s, a full parse 3 s (a new
    catalog path changes the profile, so dbt's partial parse cache does not apply)."""
    key = _parse_key(catalog, dbt_vars)
    with _PARSES_LOCK:
        if key in _PARSES:
            return
        if not _KEEP_PARSES:  # one-shot: only the parse for the run about to come is worth its memory
            _PARSES.clear()
        future: Future = Future()
        _PARSES[key] = future

    def parse() -> None:
        try:
            future.set_result(_parse(catalog, dbt_vars))
        except BaseException as exc:  # noqa: BLE001 - handed to the run, which parses itself
            future.set_exception(exc)

    # a daemon: a migration that fails while landing does not wait for a parse nobody will use
    threading.Thread(target=parse, name="delta2sql-dbt-parse", daemon=True).start()


def run_dbt(command: list[str], catalog: Catalog, reporter: Reporter, dbt_vars: dict | None = None) -> DbtResult:
    """Run `dbt <command>` for `catalog`; raise only when dbt itself could not run."""
    target_path = Path(tempfile.mkdtemp(prefix="delta2sql-dbt-"))
    _reuse_parse(target_path, catalog.target)
    options = _options(catalog, target_path, dbt_vars)

    def on_event(event) -> None:
        if event.info.name == "NodeFinished":
            node = event.data.node_info
            reporter.event("dbt_node", node=node.unique_id, status=node.node_status)

    manifest = _parsed_project(catalog, dbt_vars)  # before the lock, which a parse ahead holds
    with _one_at_a_time(catalog), _environment(catalog.env()):
        # imported here: commands that run no dbt (assess, status) start 2 s sooner
        from dbt.cli.main import dbtRunner

        result = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke([*command, *options])
    results_file = target_path / "run_results.json"
    if result.exception is not None or not results_file.exists():
        raise Delta2SqlError(f"dbt {' '.join(command)} could not run: {result.exception}")
    run_results = json.loads(results_file.read_text())["results"]
    _keep_parse(target_path, catalog.target)
    return DbtResult(success=bool(result.success), run_results=run_results, target_path=target_path)


def _options(catalog: Catalog, target_path: Path, dbt_vars: dict | None) -> list[str]:
    options = [
        "--project-dir", str(project_dir()),
        "--profiles-dir", str(profiles_dir()),
        "--target", catalog.target,
        "--target-path", str(target_path),
        "--log-path", str(target_path / "logs"),
        "--log-level", "none",
    ]
    return options + (["--vars", _vars_text(dbt_vars)] if dbt_vars else [])


def _parse_key(catalog: Catalog, dbt_vars: dict | None) -> tuple:
    """What a parse depends on: relations are named after the catalog's schema or file, and the
    vars are compiled in."""
    return catalog.target, tuple(sorted(catalog.env().items())), _vars_text(dbt_vars) if dbt_vars else None


def _parse(catalog: Catalog, dbt_vars: dict | None):
    """The parsed project (dbt's Manifest) for `catalog`, or None if dbt could not parse it (the
    run then parses, and reports, itself)."""
    target_path = Path(tempfile.mkdtemp(prefix="delta2sql-dbt-"))
    _reuse_parse(target_path, catalog.target)
    with _IN_THIS_PROCESS, _environment(catalog.env()):
        from dbt.cli.main import dbtRunner

        parsed = dbtRunner().invoke(["parse", *_options(catalog, target_path, dbt_vars)])
    if not parsed.success:
        return None
    _keep_parse(target_path, catalog.target)
    return parsed.result


def _parsed_project(catalog: Catalog, dbt_vars: dict | None):
    """The parse started ahead for this run, or kept by a resident process (parsing it now if
    not yet); None otherwise, and the run parses itself."""
    if _KEEP_PARSES:
        parse_ahead(catalog, dbt_vars)
    key = _parse_key(catalog, dbt_vars)
    with _PARSES_LOCK:
        future = _PARSES.get(key) if _KEEP_PARSES else _PARSES.pop(key, None)
    if future is None:
        return None
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - the run parses again and reports what fails
        return None


def _vars_text(dbt_vars: dict) -> str:
    """`dbt_vars` as the YAML dbt's `--vars` reads (libyaml): JSON, with every character outside
    printable ASCII written as a YAML escape. json.dumps would write an emoji as a UTF-16
    surrogate pair, which libyaml refuses; raw, a C1 control or U+FFFF is refused too."""
    text = json.dumps(dbt_vars, ensure_ascii=False)
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in text)


def _parse_cache(target: str) -> Path:
    return Path(tempfile.gettempdir()) / f"delta2sql-partial-parse-{os.getuid()}-{target}.msgpack"


def _reuse_parse(target_path: Path, target: str) -> None:
    """Seed the new target directory with the last parse of this project for this target.

    dbt parsing costs seconds per invocation; with the cached manifest dbt re-parses only what
    changed (it checks file hashes, the profile and the vars itself)."""
    cache = _parse_cache(target)
    if cache.exists():
        shutil.copyfile(cache, target_path / "partial_parse.msgpack")


def _keep_parse(target_path: Path, target: str) -> None:
    parsed = target_path / "partial_parse.msgpack"
    if parsed.exists():
        temporary = _parse_cache(target).with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(parsed, temporary)
        os.replace(temporary, _parse_cache(target))  # atomic: concurrent runs never read half a file


def failed_nodes(result: DbtResult) -> list[dict]:
    """Nodes that did not succeed: errors, failed tests and whatever was skipped because of them."""
    return [r for r in result.run_results if r["status"] not in ("success", "pass", "warn")]


def plain_dbt_command(catalog: Catalog) -> str:
    """The shell command that runs plain dbt on `catalog` from any directory: the same models
    and tests, the same profile, with the variables the CLI sets for its own dbt runs."""
    variables = " ".join(f"{name}={shlex.quote(value)}" for name, value in catalog.env().items())
    return (f"{variables} dbt build --project-dir {shlex.quote(str(project_dir()))} "
            f"--profiles-dir {shlex.quote(str(profiles_dir()))}")

