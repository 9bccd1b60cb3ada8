"""`delta2sql calibrate`: this machine's migration rates on one target, measured, for estimates.

It writes the synthetic logs of `calibration_tables` into a temporary directory and migrates each
with the `delta2sql migrate` command, in a process of its own as a user's migration runs (its
start-up is part of what is measured), into a scratch catalog of the target: a temporary file
for DuckDB and SQLite, a schema of its own on PostgreSQL (dropped afterwards). Each run's phases
come from its `migration_runs` row (`landing_seconds`, `build_seconds`) and the process's wall
time; `fit` turns them into `estimate.Rates`.

The result lives in `calibration_dir()` (DELTA2SQL_CALIBRATION_DIR, else
$XDG_CACHE_HOME/delta2sql, else ~/.cache/delta2sql) as `calibration-<target>.json`, with the runs
it was fitted on. It runs only when asked: once per machine and target, and again after an
upgrade of delta2sql or of the machine. An estimate names the file and its date; a calibration
from another host, or from another delta2sql version, is not used.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from delta2sql.batches import default_checkpoint_batch_rows
from delta2sql.calibration_tables import Shape, shapes, write_table
from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
from delta2sql.estimate import Rates, Workload, workload
from delta2sql.log_listing import checkpoint_footers, plan_segment
from delta2sql.log_store import open_log
from delta2sql.progress import Reporter

TINY_RUNS = 2  # the tiny table first and last: the fixed costs are their median


class CalibrationError(Delta2SqlError):
    """A calibration migration failed, or its measurements cannot be fitted."""


@dataclass(frozen=True)
class Measurement:
    """One calibration migration: what it had to do, and how long each phase took."""

    table: str
    work: Workload
    wall_seconds: float
    landing_seconds: float
    build_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    target: str
    rates: Rates
    measured_at: str  # ISO 8601, UTC
    host: str
    delta2sql_version: str
    scale: float
    measurements: list[Measurement]

    def describe(self, path: Path) -> str:
        return f"calibrated on {self.host} at {self.measured_at[:16].replace('T', ' ')} UTC ({path})"

    def as_dict(self) -> dict:
        return {"target": self.target, "rates": asdict(self.rates), "measured_at": self.measured_at,
                "host": self.host, "delta2sql_version": self.delta2sql_version, "scale": self.scale,
                "measurements": [m.as_dict() for m in self.measurements]}


def calibration_dir() -> Path:
    if os.environ.get("DELTA2SQL_CALIBRATION_DIR"):
        return Path(os.environ["DELTA2SQL_CALIBRATION_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "delta2sql"


def calibration_path(target: str) -> Path:
    return calibration_dir() / f"calibration-{target}.json"


def load(target: str) -> tuple[Calibration | None, str]:
    """This machine's calibration of `target`, or None with the reason there is none to use."""
    path = calibration_path(target)
    hint = f"run `delta2sql calibrate --target {target}` for a time estimate"
    try:
        data = json.loads(path.read_text())
        found = Calibration(data["target"], Rates(**data["rates"]), data["measured_at"], data["host"],
                            data["delta2sql_version"], data["scale"],
                            [Measurement(m["table"], Workload(**m["work"]), m["wall_seconds"], m["landing_seconds"],
                                         m["build_seconds"]) for m in data["measurements"]])
    except FileNotFoundError:
        return None, f"not calibrated for {target} on this machine: {hint}"
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"the calibration {path} cannot be read ({exc!r}): {hint}"
    if found.host != socket.gethostname():
        return None, f"the calibration {path} was measured on {found.host}, not here: {hint}"
    if found.delta2sql_version != _version():
        return None, f"the calibration {path} was measured with delta2sql {found.delta2sql_version}: {hint}"
    return found, found.describe(path)


def calibrate(catalog: Catalog, reporter: Reporter, scale: float = 1.0) -> tuple[Calibration, Path]:
    """Measure, fit and store `catalog.target`'s rates on this machine."""
    with tempfile.TemporaryDirectory(prefix="delta2sql-calibration-") as scratch:
        root = Path(scratch)
        runs = _runs(shapes(scale))
        measurements = []
        with reporter.task(f"calibrating {catalog.target}", None) as advance:
            for number, shape in enumerate(runs):
                table = root / "tables" / shape.name
                if not table.exists():
                    write_table(table, shape)
                measurement = _migrate(table, shape, number, catalog, root)
                measurements.append(measurement)
                reporter.event("calibration_run", target=catalog.target, **measurement.as_dict(),
                               message=f"{shape.name}: {measurement.wall_seconds:.1f} s (landing "
                                       f"{measurement.landing_seconds:.1f} s, build {measurement.build_seconds:.1f} s)")
                advance(0, tables=1)
    found = Calibration(catalog.target, fit(measurements), datetime.now(UTC).isoformat(timespec="seconds"),
                        socket.gethostname(), _version(), scale, measurements)
    path = calibration_path(catalog.target)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
    staged.write_text(json.dumps(found.as_dict(), indent=2) + "\n")
    staged.replace(path)  # an estimate never reads half a file
    return found, path


def _runs(tables: list[Shape]) -> list[Shape]:
    tiny, rest = tables[0], tables[1:]
    return [tiny, *rest] + [tiny] * (TINY_RUNS - 1)


def _migrate(table: Path, shape: Shape, number: int, catalog: Catalog, root: Path) -> Measurement:
    """Migrate `table` with the CLI into a scratch catalog of `catalog`'s target."""
    env = {**os.environ, **catalog.env()}
    command = [sys.executable, "-m", "delta2sql.cli", "migrate", str(table), "--name", shape.name,
               "--target", catalog.target, "--json"]
    if catalog.target == "postgres":
        env["DELTA2SQL_PG_SCHEMA"] = f"delta2sql_calibration_{uuid.uuid4().hex[:12]}"
        env.pop("DELTA2SQL_CATALOG", None)
        scratch = Catalog(target="postgres", extra_env={"DELTA2SQL_PG_SCHEMA": env["DELTA2SQL_PG_SCHEMA"]})
    else:
        scratch = Catalog(target=catalog.target, path=root / f"run{number}.{catalog.target}")
        env["DELTA2SQL_CATALOG"] = str(scratch.path)
        command += ["--catalog", str(scratch.path)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise CalibrationError(f"calibration: migrating the {shape.name} table into {catalog.target} failed "
                                   f"(exit {done.returncode}): {_last_error(done)}")
        with scratch.connect() as con:
            landing, build = con.execute("select landing_seconds, build_seconds from migration_runs "
                                         "where table_name = ?", [shape.name]).fetchall()[0]
    finally:
        if catalog.target == "postgres":
            with scratch.connect() as con:
                con.raw.execute(f'drop schema if exists "{con.schema}" cascade')
    log = open_log(table)
    segment = plan_segment(log)
    slice_rows = default_checkpoint_batch_rows(catalog.target)
    return Measurement(shape.name, workload(segment, checkpoint_footers(segment), slice_rows), wall, landing, build)


def _last_error(done: subprocess.CompletedProcess) -> str:
    for line in reversed(done.stdout.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") in ("error", "table_failed", "migration_finished"):
            return event.get("message") or event.get("error") or line
    return (done.stderr or done.stdout).strip()[-500:]


def fit(measurements: list[Measurement]) -> Rates:
    """The rates that explain `measurements` (least squares, no rate below zero). The process
    phase is the median over every run of what is neither landing nor build; the tiny table's
    median landing and build are the fixed costs; each other table's landing and build beyond
    them give the costs of their drivers. Raises CalibrationError when a table is missing."""
    by_table: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_table.setdefault(m.table, []).append(m)
    missing = {shape.name for shape in shapes(1.0)} - set(by_table)
    if missing:
        raise CalibrationError(f"calibration: no measurement of {', '.join(sorted(missing))}")
    process = statistics.median(m.wall_seconds - m.landing_seconds - m.build_seconds for m in measurements)
    tinies = by_table.pop("tiny")
    listing = statistics.median(m.landing_seconds for m in tinies)
    build = statistics.median(m.build_seconds for m in tinies)
    tiny_work = tinies[0].work
    others = [runs[0] for runs in by_table.values()]

    def landing(m: Measurement) -> float:
        return max(0.0, m.landing_seconds - listing)

    serial = [m for m in others if m.work.checkpoint_rows and m.work.checkpoint_parallelism == 1]
    per_row, per_checkpoint_byte = _nonnegative_fit(
        [[m.work.checkpoint_rows, m.work.checkpoint_bytes] for m in serial], [landing(m) for m in serial])
    parallel_share = _parallel_share([m for m in others if m.work.checkpoint_parallelism > 1], landing,
                                     per_row, per_checkpoint_byte)
    commits = [m for m in others if not m.work.checkpoint_rows]
    per_file, per_commit_byte = _nonnegative_fit(
        [[m.work.commit_files, m.work.commit_bytes] for m in commits], [landing(m) for m in commits])
    per_action, per_log_file, per_log_byte = _nonnegative_fit(
        [[m.work.catalog_actions - tiny_work.catalog_actions, m.work.catalog_log_files - tiny_work.catalog_log_files,
          m.work.catalog_log_bytes - tiny_work.catalog_log_bytes] for m in others],
        [max(0.0, m.build_seconds - build) for m in others])
    return Rates(process, listing, per_row, per_checkpoint_byte, parallel_share, per_file, per_commit_byte,
                 build, per_action, per_log_file, per_log_byte)


def _parallel_share(split: list[Measurement], landing, per_row: float, per_byte: float) -> float:
    """The share p of a checkpoint's serial cost that its row groups divide among threads, from
    the checkpoints read by several: their landing is serial · (1 − p + p / parallelism)."""
    shares = []
    for m in split:
        serial = m.work.checkpoint_rows * per_row + m.work.checkpoint_bytes * per_byte
        if serial > 0:
            shares.append((1 - landing(m) / serial) / (1 - 1 / m.work.checkpoint_parallelism))
    return min(1.0, max(0.0, sum(shares) / len(shares))) if shares else 0.0


def _nonnegative_fit(rows: list[list[float]], seconds: list[float]) -> list[float]:
    """Least squares of seconds = Σ rate·driver with every rate ≥ 0: the best fit over the
    subsets of drivers whose own least squares has no negative rate (a handful of drivers, so
    trying every subset is exact and cheap)."""
    x, y = np.array(rows, dtype=float), np.array(seconds, dtype=float)
    width = x.shape[1]
    best, best_error = np.zeros(width), float(y @ y)
    for subset in itertools.chain.from_iterable(itertools.combinations(range(width), k) for k in range(1, width + 1)):
        columns = list(subset)
        solution, *_ = np.linalg.lstsq(x[:, columns], y, rcond=None)
        if (solution < 0).any():
            continue
        rates = np.zeros(width)
        rates[columns] = solution
        error = float(np.sum((x @ rates - y) ** 2))
        if error < best_error:
            best, best_error = rates, error
    return [float(rate) for rate in best]


def summary(found: Calibration) -> list[str]:
    """The fitted rates, as lines a person reads."""
    r = found.rates
    mib = 2**20
    return [
        f"process      {r.process_seconds:.1f} s (the command's start and exit)",
        f"listing      {r.listing_seconds:.1f} s (a one-commit table's landing)",
        (f"checkpoint   {r.checkpoint_seconds_per_row * 1e6:.2f} s per million rows + "
         f"{r.checkpoint_seconds_per_byte * 2**30:.2f} s per GiB read, {r.checkpoint_parallel_share:.0%} of it "
         "divided among threads when row groups allow"),
        f"commits      {r.commit_seconds_per_file * 1000:.2f} ms per file + {r.commit_seconds_per_byte * mib:.3f} s per MiB",
        (f"build        {r.build_seconds:.1f} s + {r.build_seconds_per_action * 1e6:.2f} s per million actions + "
         f"{r.build_seconds_per_log_file * 1000:.2f} s per thousand log files + "
         f"{r.build_seconds_per_log_byte * 2**30:.2f} s per GiB of log"),
    ]


def _version() -> str:
    return package_version("delta2sql")
