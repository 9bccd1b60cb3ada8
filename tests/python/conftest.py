"""Shared pytest fixtures: catalogs on each engine (PostgreSQL in a schema of its own per run),
the corpus location, fleets of tables migrated once per session, and a reporter that records
warnings instead of printing them."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from delta2sql.catalog import Catalog
from delta2sql.migrate import MigrationOutcome, TableSpec, migrate_tables
from delta2sql.progress import Reporter
from delta2sql.validate import CheckResult, validate_tables

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "delta-corpus" / "delta-rs"
IN_CI = os.environ.get("CI") == "true"
ENGINES = ("duckdb", "postgres", "sqlite")
RUN_ID = uuid.uuid4().hex[:8]  # keeps concurrent test runs apart on the shared PostgreSQL


def pytest_collection_modifyitems(config, items):
    """Each test parametrized by engine gets that engine's marker, so `-m postgres` runs one
    engine's tests alone."""
    for item in items:
        params = item.callspec.params.values() if hasattr(item, "callspec") else ()
        for engine in {value for value in params if isinstance(value, str) and value in ENGINES}:
            item.add_marker(getattr(pytest.mark, engine))


class RecordingReporter(Reporter):
    """Keeps events so tests can assert on warnings and failures."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, kind: str, **fields) -> None:
        self.events.append((kind, fields))

    def messages(self, kind: str) -> list[str]:
        return [f.get("message", "") for k, f in self.events if k == kind]


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture(autouse=True)
def calibration_dir(tmp_path, monkeypatch) -> Path:
    """Each test's own calibration directory, empty: a calibration this machine keeps in its
    cache would otherwise put estimates in every plan and run."""
    directory = tmp_path / "calibration"
    monkeypatch.setenv("DELTA2SQL_CALIBRATION_DIR", str(directory))
    return directory


def write_calibration(target: str, **rates: float) -> Path:
    """A calibration of `target` for this host and delta2sql version with hand-chosen `rates`
    (every rate of estimate.Rates; the fields the test leaves out are 0), in the test's directory."""
    from importlib.metadata import version

    from delta2sql.estimate import Rates

    every = {name: 0.0 for name in Rates.__dataclass_fields__} | rates
    directory = Path(os.environ["DELTA2SQL_CALIBRATION_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"calibration-{target}.json"
    path.write_text(json.dumps({"target": target, "rates": every, "measured_at": "2026-11-28T12:00:00+00:00",
                                "host": socket.gethostname(), "delta2sql_version": version("delta2sql"),
                                "scale": 1.0, "measurements": []}))
    return path


def postgres_settings() -> dict:
    return Catalog(target="postgres").settings


_schemas: list[str] = []


def require_postgres() -> None:
    """PostgreSQL is mandatory in CI (a failure, never a silent skip); optional elsewhere."""
    s = postgres_settings()
    try:
        psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
                        password=s.get("password") or None, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {s['host']}:{s['port']} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def make_catalog(engine: str, directory: Path, name: str) -> Catalog:
    """A fresh catalog on `engine`: a file in `directory`, or a PostgreSQL schema of this run."""
    if engine == "postgres":
        require_postgres()
        schema = f"d2s_{RUN_ID}_{name}".lower()
        _schemas.append(schema)
        return Catalog(target="postgres", extra_env={"DELTA2SQL_PG_SCHEMA": schema})
    return Catalog(target=engine, path=directory / f"{name}.{engine}")


@pytest.fixture(scope="session", autouse=True)
def drop_postgres_schemas():
    yield
    if not _schemas:
        return
    s = postgres_settings()
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
                         password=s.get("password") or None, autocommit=True) as con:
        for schema in _schemas:
            con.execute(f'drop schema if exists "{schema}" cascade')


def cli_options(catalog: Catalog) -> tuple[list[str], dict[str, str]]:
    """The CLI options, and extra environment, that reach `catalog` (a file, or this run's schema)."""
    if catalog.target == "postgres":
        return ["--target", "postgres"], dict(catalog.extra_env)
    return ["--target", catalog.target, "--catalog", str(catalog.path)], {}


def invoke_cli(catalog: Catalog, *args: str):
    """`delta2sql <args> --json` on `catalog`, in-process."""
    from click.testing import CliRunner

    from delta2sql.cli import main

    options, env = cli_options(catalog)
    return CliRunner(env=env).invoke(main, [*args, *options, "--json"])


@pytest.fixture(params=ENGINES)
def catalog(request, tmp_path) -> Catalog:
    return make_catalog(request.param, tmp_path, "t" + uuid.uuid4().hex[:6])


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """../shared/delta-corpus: required in CI, skipped (with a reason) on a laptop without it."""
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the Delta corpus is required when CI=true, but {CORPUS} is missing")
        pytest.skip(f"{CORPUS} not present")
    return CORPUS


def corpus_tables(root: Path) -> dict[str, Path]:
    """Every Delta table under the corpus root, named by its relative path."""
    return {str(d.parent.relative_to(root)): d.parent for d in sorted(root.rglob("_delta_log"))}


@dataclass
class FleetRun:
    """A set of tables migrated and validated together into one catalog."""

    tables: dict[str, Path]
    catalog: Catalog
    outcomes: dict[str, MigrationOutcome]
    checks: list[CheckResult]
    reporter: RecordingReporter

    def checks_of(self, name: str) -> list[CheckResult]:
        return [c for c in self.checks if c.table_name == name]


_fleets: dict[tuple[str, str], FleetRun] = {}


def run_fleet(fleet: str, engine: str, tables: dict[str, Path], workdir: Path) -> FleetRun:
    """Migrate and validate `tables` on `engine` once per session (cached by fleet and engine)."""
    key = (fleet, engine)
    if key not in _fleets:
        catalog = make_catalog(engine, workdir, f"{fleet}_{engine}")
        reporter = RecordingReporter()
        outcomes = migrate_tables([TableSpec(path, name) for name, path in tables.items()], catalog, reporter)
        checks = validate_tables(catalog, reporter)
        _fleets[key] = FleetRun(tables, catalog, {o.name: o for o in outcomes}, checks, reporter)
    return _fleets[key]


@pytest.fixture(scope="session")
def fleet_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fleets")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def fixture_tables(fleet_dir) -> dict[str, Path]:
    """Every fixture table, built once per session (see test_fixture_tables.build_fixture_tables)."""
    from test_fixture_tables import build_fixture_tables

    return build_fixture_tables(fleet_dir / "tables")


def documented_events() -> dict[str, set[str]]:
    """Event type -> fields, from docs/json-events.md (a `### \\`name\\`` heading, then bullets of fields)."""
    documented: dict[str, set[str]] = {}
    current = None
    for line in (REPO / "docs" / "json-events.md").read_text().splitlines():
        if heading := re.match(r"### `(\w+)`", line):
            current = documented.setdefault(heading.group(1), set())
        elif current is not None and line.startswith("- "):
            current.update(re.findall(r"`(\w+)`(?=(?:, `\w+`)* \()", line))  # `name` (type) or `a`, `b` (types)
    return documented


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts (metrics)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
