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


# Parsed projects kept by a resident process (keep_parsed_projects), by what the parse depends on.
_PARSED: dict[tuple, object] | None = None


def keep_parsed_projects() -> None:
    """For a process that runs dbt again and again (`sync --every`, `worker`): each catalog's
    project is parsed once and handed to every later invocation (dbtRunner(manifest=...)), which
    spares dbt's parse and one manifest write per run (~0.7 s of a 4.3 s catch-up of long x1).
    One-shot commands do not keep it: the first parse costs a dbt invocation of its own.

    Parsing ahead on a thread while a one-shot migration lands was measured twice and gained
    nothing on long x1 (the landing's Python and dbt's parse take turns on the GIL; 2026-12-06:
    24.2 s against 25.5 s, 3 pairs, within the noise) and 0.94x to 1.01x on wide x1."""
    global _PARSED
    if _PARSED is None:
        _PARSED = {}


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
    _reuse_parse(target_path, catalog.target)
    vars_options = ["--vars", _vars_text({**catalog.dbt_vars(), **(dbt_vars or {})})]
    options = [
        "--project-dir", str(project_dir()),
        "--profiles-dir", str(profiles_dir()),
        "--target", catalog.target,
        "--target-path", str(target_path),
        "--log-path", str(target_path / "logs"),
        "--log-level", "none",
        *vars_options,
    ]
    options += ["--threads", str(threads)] if threads else []

    def on_event(event) -> None:
        if event.info.name == "NodeFinished":
            node = event.data.node_info
            reporter.event("dbt_node", node=node.unique_id, status=node.node_status)

    with _one_at_a_time(catalog):
        manifest = _parsed_project(catalog, options, vars_options)
        # imported here: commands that run no dbt (assess, status) start 2 s sooner
        from dbt.cli.main import dbtRunner

        result = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke([*command, *options])
    results_file = target_path / "run_results.json"
    if result.exception is not None or not results_file.exists():
        raise Delta2SqlError(f"dbt {' '.join(command)} could not run: {result.exception}")
    run_results = json.loads(results_file.read_text())["results"]
    _keep_parse(target_path, catalog.target)
    tags = {r.node.unique_id: list(r.node.tags) for r in result.result.results}
    return DbtResult(success=bool(result.success), run_results=run_results, tags=tags)


def _parsed_project(catalog: Catalog, options: list[str], vars_options: list[str]):
    """The kept parse of the project for this catalog and these vars (relations are named after
    the catalog's schema or file, and the vars are compiled in), parsing it now if needed; None
    when no parse is kept or dbt could not parse (the run then parses, and reports, itself)."""
    if _PARSED is None:
        return None
    key = (catalog.target, tuple(vars_options))
    if key not in _PARSED:
        from dbt.cli.main import dbtRunner

        parsed = dbtRunner().invoke(["parse", *options])
        if not parsed.success:
            return None
        _PARSED[key] = parsed.result
    return _PARSED[key]


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

