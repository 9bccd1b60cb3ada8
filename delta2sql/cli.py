"""`delta2sql` command line: thin commands over functions that tests call directly.

Exit codes follow dbt: 0 success, 1 handled failure (bad log, failed check, missing catalog or
table), 2 a bug. Results go to stdout, progress, warnings and errors to stderr; `--json` prints
the events documented in docs/json-events.md, one per line, on stdout.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import signal
import sys
import threading
import time
import traceback
import unicodedata
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from delta2sql.assess import assess_tables, discover_tables
from delta2sql.assess import markdown as assessment_markdown
from delta2sql.assess import summary as assessment_summary
from delta2sql.batches import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHECKPOINT_BATCH_ROWS,
    SHIPPED_CHECKPOINT_BATCH_ROWS,
    default_checkpoint_batch_rows,
)
from delta2sql.calibration import calibrate as run_calibration
from delta2sql.calibration import summary as calibration_summary
from delta2sql.catalog import Catalog, catalog_from_options
from delta2sql.catalog_state import (
    catalog_exists,
    check_catalog,
    discard_if_empty,
    require_table,
    require_tables,
)
from delta2sql.console_tables import print_table, timestamp
from delta2sql.cutover import finalize_table, rollback_table
from delta2sql.dbt_runner import keep_parsed_projects, plain_dbt_command
from delta2sql.drift import detect_drift
from delta2sql.errors import CatalogBusy, CatalogError, Delta2SqlError
from delta2sql.estimate import estimate_lines, seconds_range
from delta2sql.lifecycle import HEALTHY
from delta2sql.log_store import (
    DEFAULT_IO_CONCURRENCY,
    default_table_name,
    set_io_concurrency,
    use_storage_options,
)
from delta2sql.manifest import read_manifest
from delta2sql.metrics import exposition
from delta2sql.metrics import serve as serve_metrics
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.partial_rollback import rollback_to_version
from delta2sql.plan import plan_in_catalog, stored_cap
from delta2sql.progress import STATUS_STYLES, ConsoleReporter, JsonReporter, Reporter
from delta2sql.project import project_dir
from delta2sql.report import FORMATS, gather_report, render_report
from delta2sql.runs import RunOptions
from delta2sql.sample import write_sample_table
from delta2sql.status import estimate_record, table_status
from delta2sql.sync import Backoff, sync_pass
from delta2sql.sync import exit_code as sync_exit_code
from delta2sql.transpile import TARGETS
from delta2sql.validate import LEVELS, validate_tables
from delta2sql.work_queue import RETRY_WAIT_SECONDS, queue_state, run_worker
from delta2sql.work_queue import enqueue as enqueue_tables

catalog_option = click.option(
    "--catalog", "catalog_path", envvar="DELTA2SQL_CATALOG", show_envvar=True,
    help="Catalog database file of a duckdb or sqlite target (not with postgres, whose catalog is the schema "
         "DELTA2SQL_PG_SCHEMA). Default: delta2sql.duckdb or delta2sql.sqlite in the current directory.",
)
target_option = click.option(
    "--target", "-t", type=click.Choice(TARGETS), envvar="DELTA2SQL_TARGET", show_envvar=True,
    help="Catalog engine, a target of the dbt profile. Default: duckdb.",
)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="JSON events on stdout, one per line (docs/json-events.md).")
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks.")
rate_option = click.option(
    "--max-rows-per-second", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Cap the log rows landed in the catalog database per second, by every process that writes to it with "
         "this option (workers on many machines included): a token bucket kept in the catalog.")


def _use_storage_options(_ctx, _param, pairs: tuple[str, ...]) -> None:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair.split('=')[0]!r}...")  # never echo a secret
        options[key] = value
    use_storage_options(options)


storage_option = click.option(
    "--storage-option", multiple=True, metavar="KEY=VALUE", expose_value=False, callback=_use_storage_options,
    help="Object store setting, repeatable: the keys of delta-rs's storage_options (e.g. AWS_ENDPOINT_URL, "
         "AWS_REGION, AZURE_STORAGE_ACCOUNT_NAME, google_service_account). Credentials are otherwise read where "
         "each cloud's tools look (environment, profiles, instance metadata). Never recorded or shown.",
)
io_concurrency_option = click.option(
    "--io-concurrency", type=click.IntRange(min=1), default=DEFAULT_IO_CONCURRENCY, show_default=True,
    expose_value=False, callback=lambda _ctx, _param, requests: set_io_concurrency(requests),
    help="Object store reads at the same time (many small commits are fetched concurrently).",
)


def _as_stored(name: str) -> str:
    """A table name as the catalog stores it (NFC, delta2sql.names): a decomposed `é` typed or
    completed by a shell finds the table all the same."""
    return unicodedata.normalize("NFC", name)


def catalog_command(command):
    """The options every command on a catalog takes: where the catalog is, and how to report."""
    for option in (debug_option, json_option, target_option, catalog_option, io_concurrency_option, storage_option):
        command = option(command)
    return command


def _run(as_json: bool, debug: bool, body) -> None:
    reporter = JsonReporter() if as_json else ConsoleReporter()
    try:
        code = body(reporter)
    except Delta2SqlError as exc:
        reporter.event("error", message=str(exc), error=str(exc), unexpected=False)
        if debug:
            traceback.print_exc()
        sys.exit(1)
    except Exception as exc:  # a bug: say so, exit 2 like dbt
        reporter.event("error", message=f"unexpected error (a bug; --debug shows where): {exc!r}", error=repr(exc),
                       unexpected=True)
        if debug:
            traceback.print_exc()
        sys.exit(2)
    sys.exit(code)


class Duration(click.ParamType):
    """A duration such as 30s, 5m, 1h or 90 (seconds), in seconds."""

    name = "duration"
    _UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value), re.IGNORECASE)
        if match is None or float(match[1]) <= 0:
            self.fail(f"{value!r} is not a duration such as 30s, 5m or 1h", param, ctx)
        return float(match[1]) * self._UNITS[match[2].lower()]


class MemorySize(click.ParamType):
    """A size such as 800MB, 2GB or 1.5GiB (powers of 1024 either way), in bytes."""

    name = "size"
    _UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if match is None:
            self.fail(f"{value!r} is not a size such as 800MB or 2GB", param, ctx)
        return int(float(match[1]) * self._UNITS[match[2].lower()])


def _catalog(target: str | None, catalog_path: str | None, creating: bool = False) -> Catalog:
    """The catalog the options name, refused when missing (unless `creating`), of another engine,
    or named by a --catalog that a postgres target would silently ignore."""
    catalog = catalog_from_options(target, catalog_path)
    context = click.get_current_context(silent=True)
    source = context.get_parameter_source("catalog_path") if context is not None else None
    given = source == click.core.ParameterSource.COMMANDLINE
    if catalog.target == "postgres" and given:
        raise CatalogError("--catalog names a DuckDB or SQLite file, but a postgres target keeps its catalog in "
                           "the schema DELTA2SQL_PG_SCHEMA (and the PG* connection variables): drop one of the two")
    check_catalog(catalog, creating)
    return catalog


class _Commands(click.Group):
    """Click exits 2 on a usage error; here 2 means a bug, so a wrong option exits 1 like any
    other mistake the user can fix."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as exc:
            exc.show()
            sys.exit(1)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Commands)
@click.version_option(package_name="delta2sql", message="delta2sql %(version)s")
def main() -> None:
    """Migrate Delta Lake `_delta_log` metadata into a SQL catalog and prove nothing was lost."""


@main.command()
@click.argument("table_path", required=False)
@click.option("--name", help="Table name in the catalog (default: the directory name): any Unicode text, stored in "
                               "NFC, at most 255 characters, no control characters or line breaks.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML list of tables to migrate (path, name, version, full_history) instead of TABLE_PATH.")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tables landed at the same time (with --manifest).")
@click.option("--version", "version", type=int, help="Replay up to this version (default: latest).")
@click.option("--full-history", is_flag=True, help="Replay every JSON commit from version 0, ignoring checkpoints.")
@click.option("--catalog-version", type=click.IntRange(min=0),
              help="Catalog-managed tables: the latest version their catalog ratified; the commits after the "
                   "last published one are read from _delta_log/_staged_commits/.")
@click.option("--full-refresh", is_flag=True,
              help="Re-land the table from scratch instead of resuming or catching up (its catalog rows are replaced).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="JSON commit files per committed batch, at most (a batch also ends at 32 MiB of commits).")
@click.option("--checkpoint-batch-rows", type=click.IntRange(min=1),
              help=f"Checkpoint rows per committed batch, at most (large row groups are cut) [default: "
                   f"{DEFAULT_CHECKPOINT_BATCH_ROWS:,} on DuckDB, {SHIPPED_CHECKPOINT_BATCH_ROWS:,} on PostgreSQL and SQLite].")
@click.option("--memory-limit", type=MemorySize(),
              help="Peak memory for this process, e.g. 2GB: DuckDB's caps follow from it (it spills past them), and "
                   "a run that passes it stops between batches, resumable, instead of being killed by the OS.")
@click.option("--wait", is_flag=True,
              help="If another migrate is landing the table, wait until it ends instead of stopping.")
@click.option("--dry-run", is_flag=True, help="Write nothing; report what would be read (same as `plan`).")
@rate_option
@catalog_command
def migrate(table_path, name, manifest, parallel, version, full_history, catalog_version, full_refresh, batch_size,
            checkpoint_batch_rows, memory_limit, wait, dry_run, max_rows_per_second, catalog_path, target, as_json,
            debug):
    """Land TABLE_PATH's _delta_log in the catalog and build the catalog tables.

    TABLE_PATH is a directory or an object store URI (s3://, s3a://, az://, abfs[s]://, adl://,
    gs://, file://).

    Run it again to resume an interrupted migration (it continues after the last committed
    batch) or, once migrated, to catch up with the versions committed since.
    """
    if (table_path is None) == (manifest is None):
        raise click.UsageError("give either TABLE_PATH or --manifest")
    if dry_run:
        if manifest:
            raise click.UsageError("--dry-run plans one TABLE_PATH; use `delta2sql plan` per table")
        _run(as_json, debug, lambda reporter: _report_plan(
            reporter, dataclasses.replace(_catalog(target, catalog_path, creating=True),
                                          max_rows_per_second=max_rows_per_second), table_path, name, version,
            full_history,
            batch_size, checkpoint_batch_rows, catalog_version, full_refresh))
        return

    def body(reporter) -> int:
        catalog = dataclasses.replace(_catalog(target, catalog_path, creating=True), memory_limit_bytes=memory_limit,
                                      max_rows_per_second=max_rows_per_second)
        if manifest:
            specs = read_manifest(manifest)
        else:
            specs = [TableSpec(table_path, name or default_table_name(table_path), version, full_history, catalog_version)]
        options = RunOptions(full_refresh=full_refresh, batch_size=batch_size,
                             checkpoint_batch_rows=checkpoint_batch_rows, wait=wait)
        new_catalog = not catalog_exists(catalog)
        outcomes = migrate_tables(specs, catalog, reporter, options, parallel)
        if new_catalog and not any(o.status == "migrated" for o in outcomes) and discard_if_empty(catalog):
            reporter.event("catalog_discarded", path=str(catalog.path),
                           message=f"{catalog.path} removed: the failed migration left nothing in it to resume")
        command = plain_dbt_command(catalog)
        for outcome in outcomes:
            reporter.event("migration_finished", message=_migration_line(outcome, catalog.description),
                           dbt_command=command, **asdict(outcome))
        if len(outcomes) > 1:
            _summarise(reporter, outcomes)
        migrated = [o.name for o in outcomes if o.status == "migrated"]
        if migrated and not isinstance(reporter, JsonReporter):
            Console(stderr=True).print(f"next: delta2sql validate {' '.join(map(shlex.quote, migrated))}"
                                       f"{_catalog_options(catalog)}\nplain dbt: {command}", markup=False,
                                       soft_wrap=True)
        return 0 if len(migrated) == len(outcomes) else 1

    _run(as_json, debug, body)


def _catalog_options(catalog: Catalog) -> str:
    """The options that name `catalog` again in the next command."""
    if catalog.target == "postgres":
        return " --target postgres"
    return (" --target sqlite" if catalog.target == "sqlite" else "") + f" --catalog {shlex.quote(str(catalog.path))}"


def _summarise(reporter, outcomes) -> None:
    failed = sum(o.status != "migrated" for o in outcomes)
    if not isinstance(reporter, JsonReporter):
        rows, styles = [], []
        for o in outcomes:
            versions = "" if o.latest_version is None else f"{o.replay_start_version}..{o.latest_version}"
            rows.append([o.name, o.status, (o.mode or "").replace("_", "-"), versions, f"{o.batches:,}",
                         f"{o.actions:,}", f"{o.seconds:.1f}", (o.error or "")[:300]])
            styles.append(["", "green" if o.status == "migrated" else "red", *[""] * 6])
        print_table(Console(), "migration summary",
                    ["table", "status", "mode", "versions", "batches", "actions", "seconds", "error"], rows, styles)
    reporter.event("fleet_finished", tables=len(outcomes), migrated=len(outcomes) - failed, failed=failed,
                   message=f"{len(outcomes)} tables: {len(outcomes) - failed} migrated, {failed} failed")


@main.command()
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="YAML list of the tables to keep in sync (as for `migrate --manifest`).")
@click.option("--every", type=Duration(), default=None,
              help="Repeat a pass every DURATION (e.g. 30s, 5m, 1h) until stopped; default: one pass, then exit.")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tables caught up at the same time.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="JSON commit files per committed batch, at most (a batch also ends at 32 MiB of commits).")
@click.option("--levels", default=",".join(LEVELS), show_default=True,
              help="Validation levels for the tables whose version moved.")
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535),
              help="With --every: serve Prometheus metrics on this port (docs/metrics.md).")
@rate_option
@catalog_command
def sync(manifest, every, parallel, batch_size, levels, metrics_port, max_rows_per_second, catalog_path, target,
         as_json, debug):
    """Catch up every table of the manifest, validate what changed, and report drift.

    One pass exits like `drift`: 3 new versions appeared meanwhile, 4 landed log files changed or
    disappeared, 5 a checkpoint disagrees; else 1 if a table failed, else 0. With --every, passes
    repeat until SIGTERM, which lets the pass in hand finish; a failing table backs off (1 minute,
    doubling up to an hour) without holding up the others.
    """

    def body(reporter) -> int:
        chosen = _levels(levels)
        catalog = dataclasses.replace(_catalog(target, catalog_path, creating=True),
                                      max_rows_per_second=max_rows_per_second)
        specs = read_manifest(manifest)
        if metrics_port:
            serve_metrics(catalog, metrics_port)
        if every is not None:
            keep_parsed_projects()
        # SIGTERM ends the loop after the pass in hand: raised inside dbt, an exit would be taken
        # for dbt's own failure and the loop would go on (a SIGKILL mid-pass is safe: it resumes)
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        backoff, number = Backoff(), 0
        while not stopping.is_set():
            number += 1
            started = time.monotonic()
            try:
                results = sync_pass(specs, catalog, reporter, RunOptions(batch_size=batch_size), parallel, backoff,
                                    chosen, number)
            except CatalogBusy as exc:
                if every is None:
                    raise
                # Between passes the catalog is free, and a DuckDB file can be open in one process
                # at a time: someone querying it holds this pass back, not the resident sync
                next_in = max(0.0, every - (time.monotonic() - started))
                reporter.event("warning", message=f"sync pass {number} stopped: {exc}; next pass in {next_in:.0f} s")
                stopping.wait(next_in)
                continue
            code = sync_exit_code(results)
            next_in = None if every is None else max(0.0, every - (time.monotonic() - started))
            _report_sync(reporter, number, results, code, next_in)
            if every is None:
                return code
            stopping.wait(next_in)
        return 0

    _run(as_json, debug, body)


def _report_sync(reporter, number: int, results, code: int, next_in: float | None) -> None:
    for r in results:
        detail = r.error or "; ".join(f"{f['kind']}: {f['detail']}" for f in r.findings)
        reporter.event("sync_table", pass_number=number, table=r.name, status=r.status, from_version=r.from_version,
                       to_version=r.to_version, validated=r.validated, drift_exit_code=r.drift_exit_code,
                       findings=r.findings, error=r.error, retry_in_seconds=r.retry_in_seconds,
                       message=f"{r.name}: {r.status.replace('_', ' ')}" + (f" ({detail[:300]})" if detail else ""))
    counts = {status: sum(r.status == status for r in results) for status in ("in_sync", "drift", "failed", "backing_off")}
    reporter.event("sync_finished", pass_number=number, tables=len(results), **counts, exit_code=code,
                   next_pass_in_seconds=next_in,
                   message=f"sync pass {number}: {len(results)} tables, " + ", ".join(
                       f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
                   + (f"; next pass in {next_in:.0f} s" if next_in is not None else ""))


@main.command()
@click.argument("table_path")
@click.option("--name", help="Table name in the catalog (default: the directory name).")
@click.option("--version", "version", type=int, help="Plan up to this version (default: latest).")
@click.option("--full-history", is_flag=True, help="Plan a replay of every JSON commit from version 0.")
@click.option("--catalog-version", type=click.IntRange(min=0),
              help="Catalog-managed tables: the latest version their catalog ratified.")
@click.option("--full-refresh", is_flag=True, help="Plan a re-landing from scratch, as `migrate --full-refresh`.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="JSON commit files per committed batch, at most (a batch also ends at 32 MiB of commits).")
@click.option("--checkpoint-batch-rows", type=click.IntRange(min=1),
              help="Checkpoint rows per committed batch, at most [default: as `migrate` into the target].")
@rate_option
@catalog_command
def plan(table_path, name, version, full_history, catalog_version, full_refresh, batch_size, checkpoint_batch_rows,
         max_rows_per_second, catalog_path, target, as_json, debug):
    """Report what `migrate TABLE_PATH` would do and an estimated duration; writes nothing.

    A table already in the catalog is planned as `migrate` would run it: up to date, a catch-up of
    the versions after the catalog's, or the rest of an interrupted run. A catalog that does not
    exist yet is not created.
    """
    _run(as_json, debug, lambda reporter: _report_plan(
        reporter, dataclasses.replace(_catalog(target, catalog_path, creating=True),
                                      max_rows_per_second=max_rows_per_second), table_path, name, version,
        full_history, batch_size, checkpoint_batch_rows, catalog_version, full_refresh))


def _report_plan(reporter, catalog, table_path, name, version, full_history, batch_size, checkpoint_batch_rows,
                 catalog_version, full_refresh) -> int:
    name = name or default_table_name(table_path)
    rows = checkpoint_batch_rows or default_checkpoint_batch_rows(catalog.target)
    p = plan_in_catalog(catalog, name, table_path, version, full_history, batch_size, rows, catalog_version,
                        full_refresh)
    for warning in p.warnings:
        reporter.event("warning", message=warning)
    what = {
        "full": f"full migration of versions {p.replay_start_version}..{p.latest_version}",
        "catch_up": f"catch-up: versions {p.replay_start_version}..{p.latest_version}, {p.commit_files:,} commit files",
        "up_to_date": f"up to date: the catalog holds {name} at version {p.latest_version}, the log's latest",
        "resume": f"resume: {p.committed_batches:,} of {p.batches:,} batches committed, {p.batches - p.committed_batches:,} to go",
        "finalized": f"finalized at version {p.latest_version}: writers commit to the catalog; only the catalog "
                     "tables would be built",
    }[p.mode]
    lines = [
        f"{name}: {what}",
        f"table            {p.table_root}",
        f"versions         {p.replay_start_version}..{p.latest_version}",
        f"checkpoint       {p.checkpoint or 'none'}: {p.checkpoint_reason}",
        f"  files/bytes    {p.checkpoint_files:,} files, {p.checkpoint_bytes:,} bytes, {p.checkpoint_actions:,} actions",
        f"JSON commits     {p.commit_files:,} files, {p.commit_bytes:,} bytes, ~{p.commit_actions_estimate:,} actions",
        f"batches          {p.batches:,}",
        *estimate_lines(p.estimate, p.estimate_basis),
    ]
    reporter.event("plan", message="\n".join(lines), table=name, **p.as_dict())
    return 0


@main.command()
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Size of the synthetic tables migrated (1: 2-6 minutes into DuckDB here; smaller is quicker "
                   "and less exact).")
@target_option
@json_option
@debug_option
def calibrate(scale, target, as_json, debug):
    """Measure this machine's migration rates into the target, for `plan` and `assess` estimates.

    Migrates synthetic Delta logs (a tiny one, four checkpoints, two shapes of JSON commits) with
    `delta2sql migrate` into a scratch catalog (a temporary file; on PostgreSQL a schema of its
    own, dropped afterwards) and fits each phase's rate. The result is kept per target in
    DELTA2SQL_CALIBRATION_DIR, else $XDG_CACHE_HOME/delta2sql or ~/.cache/delta2sql. Run it once
    per machine and target, and again after upgrading delta2sql.
    """
    def body(reporter) -> int:
        found, path = run_calibration(catalog_from_options(target, None), reporter, scale)
        lines = calibration_summary(found)
        reporter.event("calibrated", message="\n".join([f"calibrated {found.target}: {path}", *lines]),
                       target=found.target, path=str(path), rates=dataclasses.asdict(found.rates),
                       measured_at=found.measured_at)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.argument("location", required=False)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Assess the tables of a manifest (as `migrate --manifest`) instead of LOCATION.")
@click.option("--recursive", is_flag=True, help="Assess every table below LOCATION (a folder or an object store prefix).")
@click.option("--format", "output_format", type=click.Choice(["text", "md"]), default="text", show_default=True,
              help="md: one Markdown document on stdout, for a migration plan.")
@target_option
@json_option
@debug_option
@io_concurrency_option
@storage_option
def assess(location, manifest, recursive, output_format, target, as_json, debug):
    """Assess the tables at LOCATION (or in a manifest) before migrating: versions, checkpoint,
    live files, log size, features, and what `migrate` would refuse. Reads listings, footers and
    the newest protocol only; writes nothing. With a calibration of --target (`delta2sql calibrate`),
    it estimates each table's migration and the whole. Exits 1 when a table is blocked."""
    if (location is None) == (manifest is None):
        raise click.UsageError("give LOCATION or --manifest, not both")
    if output_format == "md" and as_json:
        raise click.UsageError("--format md and --json both write stdout: choose one")

    def body(reporter) -> int:
        if manifest:
            specs = read_manifest(manifest)
        else:
            specs = [TableSpec(path, default_table_name(path)) for path in discover_tables(location, recursive)]
        if not specs:
            raise Delta2SqlError(f"{location}: no Delta table below it (no _delta_log folder)")
        quiet = output_format == "md"
        assessments = assess_tables(specs, Reporter() if quiet else reporter, target or "duckdb")
        fleet = assessment_summary(assessments)
        if quiet:
            click.echo(assessment_markdown(assessments), nl=False)
        else:
            order = ", ".join(fleet["migration_order"][:10]) + (" ..." if len(fleet["migration_order"]) > 10 else "")
            reporter.event("assessment_finished", status="blocked" if fleet["blocked"] else "ready", **fleet,
                           message=f"{fleet['tables']} table{'s' if fleet['tables'] != 1 else ''}: {fleet['ready']} "
                                   f"ready, {fleet['blocked']} blocked"
                                   + (f" ({', '.join(fleet['blocked_tables'])})" if fleet["blocked"] else "")
                                   + (f"; one after another "
                                      f"{seconds_range(fleet['estimate_low_seconds'], fleet['estimate_high_seconds'])}"
                                      + (f" without the checkpoint downloads of {len(fleet['downloads_not_estimated'])} "
                                         "table(s) in object stores" if fleet["downloads_not_estimated"] else "")
                                      if fleet["estimated_seconds"] is not None else "")
                                   + (f"; longest first: {order}" if order else ""))
        return 1 if fleet["blocked"] else 0

    _run(as_json, debug, body)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
def sample(path):
    """Write a small sample Delta table at PATH (30 versions, a checkpoint) to try delta2sql on."""
    if path.exists():
        raise click.ClickException(f"{path} exists; give a new directory for the sample table")
    click.echo(write_sample_table(path))


@main.command("project-dir")
def project_dir_command():
    """Print the dbt project's directory, for plain dbt (`dbt build --project-dir ...`)."""
    click.echo(project_dir())


@main.command()
@click.argument("tables", nargs=-1, callback=lambda _ctx, _param, names: tuple(map(_as_stored, names)))
@catalog_command
def status(tables, catalog_path, target, as_json, debug):
    """Each table's state, versions, last run and its batches, last validation, and drift."""

    def body(reporter) -> int:
        catalog = _catalog(target, catalog_path)
        if tables:
            require_tables(catalog, list(tables), built=False)
        rows = table_status(catalog, list(tables) or None)
        queue = [job for job in queue_state(catalog) if not tables or job["table_name"] in tables]
        cap = stored_cap(catalog)
        record = estimate_record(catalog)
        if isinstance(reporter, JsonReporter):
            for row in rows:
                reporter.event("table_status", **row)
            if record is not None:
                reporter.event("estimate_record", **record)
            for job in queue:
                reporter.event("queue_job", **job)
            if cap is not None:
                reporter.event("rate_limit", max_rows_per_second=cap)
        elif not rows and not queue:
            Console().print(f"catalog {catalog.description} holds no table yet: "
                            "`delta2sql migrate TABLE_PATH` migrates one", markup=False, soft_wrap=True)
        else:
            _print_status(catalog, rows)
            if queue:
                _print_queue(queue)
            if cap is not None:
                Console().print(f"writes capped at {cap:,g} log rows/s (the newest --max-rows-per-second of this "
                                "catalog's writers)", markup=False, soft_wrap=True)
            if record is not None:
                Console().print(
                    f"estimates: {record['within_range']} of {record['runs']} built runs took a time within their "
                    f"range; landing and build against the midpoint: median {record['median_error']:+.0%} "
                    f"({record['min_error']:+.0%} to {record['max_error']:+.0%})", markup=False, soft_wrap=True)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="YAML list of tables to queue (as for `migrate --manifest`).")
@debug_option
@json_option
@target_option
def enqueue(manifest, target, as_json, debug):
    """Queue the manifest's tables in a PostgreSQL catalog for `delta2sql worker` processes.

    A table already waiting in the queue is not queued twice; a parked (failed) one is queued again.
    """

    def body(reporter) -> int:
        catalog = _catalog(target, None, creating=True)
        queued = enqueue_tables(catalog, read_manifest(manifest))
        for item in queued:
            reporter.event("enqueued", table=item.table, job_id=item.job_id,
                           message=f"{item.table}: " + (f"queued (job {item.job_id})" if item.job_id is not None
                                                        else "already waiting in the queue"))
        return 0

    _run(as_json, debug, body)


@main.command()
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tables this worker works on at the same time.")
@click.option("--max-tables", type=click.IntRange(min=1), default=None,
              help="Stop claiming after this many tables (the ones in hand finish), then exit.")
@click.option("--until-empty", is_flag=True, help="Exit once the queue is empty instead of waiting for more.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="JSON commit files per committed batch, at most (a batch also ends at 32 MiB of commits).")
@click.option("--memory-limit", type=MemorySize(),
              help="Peak memory for this process, e.g. 2GB (as for migrate): a table past it stops between "
                   "batches and is retried.")
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535),
              help="Serve Prometheus metrics of the whole catalog on this port (docs/metrics.md).")
@click.option("--retry-wait", type=click.IntRange(min=1), default=RETRY_WAIT_SECONDS, show_default=True,
              help="Seconds before a failed table's second attempt; its third waits the square. Then it is parked.")
@rate_option
@debug_option
@json_option
@target_option
def worker(concurrency, max_tables, until_empty, batch_size, memory_limit, metrics_port, retry_wait,
           max_rows_per_second, target, as_json, debug):
    """Migrate and validate tables queued by `delta2sql enqueue`, from any machine (PostgreSQL).

    Start any number of them; each claims queued tables, migrates and validates them, and releases
    them. A worker that dies is noticed after 30 s without its heartbeat: its tables go back to
    the queue and the next worker resumes them after their committed batches. SIGTERM stops a
    worker once the tables in hand are done.
    """

    def body(reporter) -> int:
        catalog = dataclasses.replace(_catalog(target, None, creating=True), memory_limit_bytes=memory_limit,
                                      max_rows_per_second=max_rows_per_second)
        if metrics_port:
            serve_metrics(catalog, metrics_port)
        keep_parsed_projects()
        done = run_worker(catalog, reporter, concurrency, max_tables, until_empty, RunOptions(batch_size=batch_size),
                          retry_wait)
        reporter.event("worker_finished", tables=done, message=f"worker finished: {done} table(s) migrated and validated")
        return 0

    _run(as_json, debug, body)


@main.command()
@debug_option
@json_option
@target_option
@catalog_option
def metrics(catalog_path, target, as_json, debug):
    """Every table's state as Prometheus metrics (text format), from the catalog alone.

    No log is read: versions behind are as of the newest drift check the catalog recorded
    (drift, finalize, sync). The names and types are in docs/metrics.md; a long-running
    `sync --every` serves the same with --metrics-port.
    """

    def body(reporter) -> int:
        text = exposition(_catalog(target, catalog_path))
        if isinstance(reporter, JsonReporter):
            reporter.event("metrics", exposition=text)
        else:
            click.echo(text, nl=False)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.argument("table", callback=lambda _ctx, _param, name: _as_stored(name))
@catalog_command
def drift(table, catalog_path, target, as_json, debug):
    """Compare TABLE in the catalog with its _delta_log now.

    Exit 0: no drift; 3: new versions (behind); 4: landed log files changed or disappeared;
    5: a newer checkpoint disagrees with the catalog. The worst finding decides.
    """

    def body(reporter) -> int:
        catalog = _catalog(target, catalog_path)
        require_table(catalog, table)
        report = detect_drift(catalog, table)
        for finding in report.findings:
            reporter.event("drift", table=table, message=f"{table}: {finding['kind']}: {finding['detail']}",
                           finding=finding["kind"], detail=finding["detail"])
        reporter.event("drift_finished", table=table, catalog_version=report.catalog_version,
                       log_version=report.log_version, exit_code=report.exit_code,
                       message=f"{table}: {'no drift' if not report.findings else f'{len(report.findings)} finding(s)'} "
                               f"(catalog at version {report.catalog_version}, log at {report.log_version})")
        return report.exit_code

    _run(as_json, debug, body)


@main.command()
@click.argument("table", callback=lambda _ctx, _param, name: _as_stored(name))
@catalog_command
def finalize(table, catalog_path, target, as_json, debug):
    """Cut TABLE over to the catalog: re-validate, refuse on drift, record the cut-over version.

    After it, writers commit new versions through the catalog (delta2sql.writer.CatalogWriter).
    """
    def body(reporter) -> int:
        catalog = _catalog(target, catalog_path)
        require_table(catalog, table)
        finalize_table(catalog, table, reporter)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.argument("table", callback=lambda _ctx, _param, name: _as_stored(name))
@click.option("--to-version", type=click.IntRange(min=0), default=None,
              help="Before finalize: go back to this version only (the catalog stands migrated at it).")
@catalog_command
def rollback(table, to_version, catalog_path, target, as_json, debug):
    """Give TABLE back to its _delta_log.

    Before finalize: delete the table's catalog rows (only those). After finalize: write every
    version committed in the catalog since cut-over into _delta_log as JSON commits (never
    overwriting a file), check delta-rs reads the same snapshots, and mark the table file-based.

    With --to-version V (before finalize only): remove what was landed after V (whole batches, and
    the versions after V within a batch), rebuild the catalog tables at V; `migrate` then catches
    up from V + 1.
    """
    def body(reporter) -> int:
        catalog = _catalog(target, catalog_path)
        require_table(catalog, table, built=False)
        if to_version is None:
            rollback_table(catalog, table, reporter)
        else:
            rollback_to_version(catalog, table, to_version, reporter)
        return 0

    _run(as_json, debug, body)


def _print_queue(queue: list[dict]) -> None:
    """The work queue of `delta2sql worker`: each table's newest job."""
    styles = {"todo": "", "doing": "cyan", "succeeded": "green", "failed": "red"}
    rows = [[job["table_name"], job["status"], str(job["attempts"]), job["worker"] or "",
             timestamp(job["claimed_at"]) if job["claimed_at"] else "", (job["error"] or "")[:300]] for job in queue]
    print_table(Console(), "work queue", ["table", "job", "attempts", "last claimed by", "at", "last error"], rows,
                [["", styles.get(job["status"], "yellow"), "", "", "", ""] for job in queue])


def _print_status(catalog: Catalog, rows: list[dict]) -> None:
    lines, styles = [], []
    for row in rows:
        checks = ("never validated" if row["checked_at"] is None
                  else f"{row['passed']} passed, {row['failed']} failed at {timestamp(row['checked_at'])}")
        versions = f"{row['replay_start_version']}..{row['latest_version']}" + (
            f" (cut over at {row['finalized_version']})" if row["finalized_version"] is not None else "")
        run = (f"{row['run_mode'].replace('_', '-')} {row['run_lease'] or row['run_status']}: "
               f"{row['batches_committed']}/{row['num_batches']} batches" if row["run_mode"] else "")
        run += f" ({row['run_error'][:200]})" if row["run_error"] else ""
        lines.append([row["table_name"], row["status"], versions, run, _estimate_cell(row), checks, row["drift"]])
        healthy = row["status"] in HEALTHY
        styles.append(["", "green" if healthy else "yellow", "", "", "", "", ""])
    print_table(Console(), f"catalog {catalog.description}",
                ["table", "status", "versions", "last run", "estimate", "validation", "drift"], lines, styles)


def _estimate_cell(row: dict) -> str:
    """The last run's estimated range of landing and build, and what they took once built."""
    if row["run_estimate_low_seconds"] is None:
        return "none"
    estimated = f"{row['run_estimate_low_seconds']:,.0f}–{row['run_estimate_high_seconds']:,.0f} s"
    return estimated + (f", took {row['run_seconds']:,.0f} s" if row["run_seconds"] is not None else "")


def _migration_line(outcome, where: str) -> str:
    if outcome.status != "migrated":
        return f"{outcome.name}: not migrated: {outcome.error}"
    how = {"catch_up": "caught up, read ", "resume": f"resumed after {outcome.batches_skipped} committed batches, read ",
           "up_to_date": "already up to date, read ", "finalized": "finalized, catalog tables built; read "}
    return (
        f"{outcome.name}: migrated versions {outcome.replay_start_version}..{outcome.latest_version} "
        f"({how.get(outcome.mode, '')}{outcome.files:,} log files, {outcome.actions:,} actions, {outcome.bytes:,} bytes) "
        f"into {where}"
    )


@main.command()
@click.argument("tables", nargs=-1, callback=lambda _ctx, _param, names: tuple(map(_as_stored, names)))
@click.option("--levels", default=",".join(LEVELS), show_default=True, help="Comma-separated validation levels.")
@click.option("--versions", "num_versions", type=click.IntRange(min=1), default=4, show_default=True,
              help="Snapshots compared with delta-rs per table: the latest, the replay start and evenly spaced ones.")
@catalog_command
def validate(tables, levels, num_versions, catalog_path, target, as_json, debug):
    """Compare migrated TABLES (default: all) with delta-rs and the log bytes; record the results."""

    def body(reporter) -> int:
        chosen = _levels(levels)
        catalog = _catalog(target, catalog_path)
        require_tables(catalog, list(tables))
        checks = validate_tables(catalog, reporter, list(tables) or None, chosen, num_versions)
        failed = [c for c in checks if c.failed]
        warned = sum(c.status == "warn" for c in checks)
        skipped = sum(c.status == "skip" for c in checks)
        if isinstance(reporter, JsonReporter):
            for check in checks:
                reporter.event("check", **asdict(check))
        else:
            _print_checks(checks)
        reporter.event("validation_finished", checks=len(checks), failed=len(failed),
                       warned=warned, skipped=skipped,
                       message=f"{len(checks) - len(failed) - warned - skipped} passed, {len(failed)} failed"
                       + (f", {warned} warned" if warned else "") + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0

    _run(as_json, debug, body)


def _levels(levels: str) -> tuple[str, ...]:
    chosen = tuple(level.strip() for level in levels.split(",") if level.strip())
    unknown = set(chosen) - set(LEVELS)
    if unknown:
        raise click.BadParameter(f"unknown level(s) {', '.join(sorted(unknown))}; choose from {', '.join(LEVELS)}")
    return chosen


def _print_checks(checks) -> None:
    """One table per migrated table; expected/observed shown for what did not pass."""
    for name in sorted({c.table_name for c in checks}):
        mine = sorted((c for c in checks if c.table_name == name), key=lambda c: (LEVELS.index(c.level), c.check_name))
        rows = [[c.level, c.check_name.removeprefix("assert_"), c.status,
                 "" if c.status == "pass" else f"{c.expected[:200]} / {c.observed[:200] or c.details[:200]}"]
                for c in mine]
        styles = [["", "", STATUS_STYLES[c.status], ""] for c in mine]
        print_table(Console(), f"validation of {name}", ["level", "check", "status", "expected / observed"],
                    rows, styles)


@main.command()
@click.argument("table", callback=lambda _ctx, _param, name: _as_stored(name))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the document to FILE (default: print it).")
@catalog_command
def report(table, fmt, output, catalog_path, target, as_json, debug):
    """A review document for TABLE before cut-over: its source, runs and batches, every check of
    its latest validation, drift, and a chart of its live files by version (HTML: self-contained)."""

    def body(reporter) -> int:
        document = render_report(gather_report(_catalog(target, catalog_path), table), fmt)
        if output is not None:
            try:
                output.write_text(document, encoding="utf-8")
            except OSError as exc:
                raise Delta2SqlError(f"cannot write the report to {output}: {exc}") from exc
            reporter.event("report_written", table=table, format=fmt, path=str(output),
                           message=f"{table}: {fmt} report written to {output}")
        elif as_json:  # stdout carries JSON lines only: the document travels inside the event
            reporter.event("report_written", table=table, format=fmt, path=None, document=document)
        else:
            click.echo(document, nl=False)
        return 0

    _run(as_json, debug, body)


if __name__ == "__main__":
    main()
