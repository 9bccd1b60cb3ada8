"""`delta2sql` command line: thin commands over functions that tests call directly.

Exit codes follow dbt: 0 success, 1 handled failure (bad log, failed check), 2 unexpected error.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from delta2sql.batches import DEFAULT_BATCH_SIZE, DEFAULT_CHECKPOINT_BATCH_ROWS, SHIPPED_CHECKPOINT_BATCH_ROWS
from delta2sql.catalog import catalog_from_options
from delta2sql.cutover import finalize_table, rollback_table
from delta2sql.drift import detect_drift
from delta2sql.errors import Delta2SqlError
from delta2sql.manifest import read_manifest
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.plan import make_plan
from delta2sql.progress import ConsoleReporter, JsonReporter
from delta2sql.runs import RunOptions
from delta2sql.status import table_status
from delta2sql.validate import LEVELS, validate_tables

catalog_option = click.option(
    "--catalog", "catalog_path", envvar="DELTA2SQL_CATALOG",
    help="Catalog database file (DuckDB). Default: delta2sql.duckdb.",
)
target_option = click.option("--target", "-t", envvar="DELTA2SQL_TARGET", help="dbt target of profiles/profiles.yml.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON lines on stdout.")
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks.")


def catalog_command(command):
    """The options every command on a catalog takes: where the catalog is, and how to report."""
    for option in (debug_option, json_option, target_option, catalog_option):
        command = option(command)
    return command


def _run(as_json: bool, debug: bool, body) -> None:
    reporter = JsonReporter() if as_json else ConsoleReporter()
    try:
        code = body(reporter)
    except Delta2SqlError as exc:
        reporter.event("error", message=f"[red]error:[/red] {exc}", error=str(exc))
        if debug:
            traceback.print_exc()
        sys.exit(1)
    except Exception as exc:  # unexpected: say so, exit 2 like dbt
        reporter.event("error", message=f"[red]unexpected error:[/red] {exc!r}", error=repr(exc))
        if debug:
            traceback.print_exc()
        sys.exit(2)
    sys.exit(code)


@click.group()
@click.version_option(package_name="delta2sql", message="delta2sql %(version)s")
def main() -> None:
    """Migrate Delta Lake `_delta_log` metadata into a SQL catalog and prove nothing was lost."""


@main.command()
@click.argument("table_path", type=click.Path(path_type=Path), required=False)
@click.option("--name", help="Table name in the catalog (default: the directory name).")
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
              help="JSON commit files per committed batch.")
@click.option("--checkpoint-batch-rows", type=click.IntRange(min=1),
              help=f"Checkpoint rows per committed batch, at most (large row groups are cut) [default: "
                   f"{DEFAULT_CHECKPOINT_BATCH_ROWS:,} on DuckDB, {SHIPPED_CHECKPOINT_BATCH_ROWS:,} on PostgreSQL and SQLite].")
@click.option("--dry-run", is_flag=True, help="Write nothing; report what would be read (same as `plan`).")
@catalog_command
def migrate(table_path, name, manifest, parallel, version, full_history, catalog_version, full_refresh, batch_size,
            checkpoint_batch_rows, dry_run, catalog_path, target, as_json, debug):
    """Land TABLE_PATH's _delta_log in the catalog and build the catalog tables.

    Run it again to resume an interrupted migration (it continues after the last committed
    batch) or, once migrated, to catch up with the versions committed since.
    """
    if (table_path is None) == (manifest is None):
        raise click.UsageError("give either TABLE_PATH or --manifest")
    if dry_run:
        if manifest:
            raise click.UsageError("--dry-run plans one TABLE_PATH; use `delta2sql plan` per table")
        _run(as_json, debug, lambda reporter: _report_plan(reporter, table_path, version, full_history, batch_size,
                                                          checkpoint_batch_rows, catalog_version))
        return

    def body(reporter) -> int:
        catalog = catalog_from_options(target, catalog_path)
        if manifest:
            specs = read_manifest(manifest)
        else:
            specs = [TableSpec(table_path, name or table_path.resolve().name, version, full_history, catalog_version)]
        options = RunOptions(full_refresh=full_refresh, batch_size=batch_size,
                             checkpoint_batch_rows=checkpoint_batch_rows)
        outcomes = migrate_tables(specs, catalog, reporter, options, parallel)
        for outcome in outcomes:
            reporter.event("migration_finished", message=_migration_line(outcome, catalog.description), **asdict(outcome))
        if len(outcomes) > 1:
            _summarise(reporter, outcomes)
        return 0 if all(o.status == "migrated" for o in outcomes) else 1

    _run(as_json, debug, body)


def _summarise(reporter, outcomes) -> None:
    failed = sum(o.status != "migrated" for o in outcomes)
    if not isinstance(reporter, JsonReporter):
        table = Table(title="migration summary")
        for column in ("table", "status", "mode", "versions", "batches", "actions", "seconds", "error"):
            table.add_column(column, overflow="fold")
        for o in outcomes:
            versions = "" if o.latest_version is None else f"{o.replay_start_version}..{o.latest_version}"
            colour = "green" if o.status == "migrated" else "red"
            table.add_row(o.name, f"[{colour}]{o.status}[/]", o.mode or "", versions, f"{o.batches:,}",
                          f"{o.actions:,}", f"{o.seconds:.1f}", (o.error or "")[:300])
        Console(stderr=True).print(table)
    reporter.event("fleet_finished", tables=len(outcomes), migrated=len(outcomes) - failed, failed=failed)


@main.command()
@click.argument("table_path", type=click.Path(path_type=Path))
@click.option("--version", "version", type=int, help="Plan up to this version (default: latest).")
@click.option("--full-history", is_flag=True, help="Plan a replay of every JSON commit from version 0.")
@click.option("--catalog-version", type=click.IntRange(min=0),
              help="Catalog-managed tables: the latest version their catalog ratified.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True)
@click.option("--checkpoint-batch-rows", type=click.IntRange(min=1), default=DEFAULT_CHECKPOINT_BATCH_ROWS,
              show_default=True, help="Checkpoint rows per batch, at most, as into a DuckDB catalog.")
@json_option
@debug_option
def plan(table_path, version, full_history, catalog_version, batch_size, checkpoint_batch_rows, as_json, debug):
    """Report what migrating TABLE_PATH would read and an estimated duration; writes nothing."""
    _run(as_json, debug, lambda reporter: _report_plan(reporter, table_path, version, full_history, batch_size,
                                                      checkpoint_batch_rows, catalog_version))


def _report_plan(reporter, table_path, version, full_history, batch_size, checkpoint_batch_rows,
                 catalog_version) -> int:
    p = make_plan(table_path, version, full_history, batch_size, checkpoint_batch_rows, catalog_version=catalog_version)
    for warning in p.warnings:
        reporter.event("warning", message=warning)
    lines = [
        f"table            {p.table_root}",
        f"versions         {p.replay_start_version}..{p.latest_version}",
        f"checkpoint       {p.checkpoint or 'none'}: {p.checkpoint_reason}",
        f"  files/bytes    {p.checkpoint_files:,} files, {p.checkpoint_bytes:,} bytes, {p.checkpoint_actions:,} actions",
        f"JSON commits     {p.commit_files:,} files, {p.commit_bytes:,} bytes, ~{p.commit_actions_estimate:,} actions",
        f"batches          {p.batches:,}",
        f"estimate         ~{p.estimated_seconds:,} s (sample: {p.sample_files} files landed in {p.sample_seconds} s)",
    ]
    reporter.event("plan", message="\n".join(lines), **p.as_dict())
    return 0


@main.command()
@click.argument("tables", nargs=-1)
@catalog_command
def status(tables, catalog_path, target, as_json, debug):
    """Each table's state, versions, last run and its batches, last validation, and drift."""

    def body(reporter) -> int:
        catalog = catalog_from_options(target, catalog_path)
        rows = table_status(catalog, list(tables) or None)
        if isinstance(reporter, JsonReporter):
            for row in rows:
                reporter.event("table_status", **row)
        else:
            table = Table(title=f"catalog {catalog.description}")
            for column in ("table", "status", "versions", "last run", "validation", "drift"):
                table.add_column(column, overflow="fold")
            for row in rows:
                checks = ("never validated" if row["checked_at"] is None
                          else f"{row['passed']} passed, {row['failed']} failed at {row['checked_at']}")
                versions = f"{row['replay_start_version']}..{row['latest_version']}" + (
                    f" (cut over at {row['finalized_version']})" if row["finalized_version"] is not None else "")
                run = (f"{row['run_mode']} {row['run_status']}: {row['batches_committed']}/{row['num_batches']} batches"
                       if row["run_mode"] else "") + (f" ({row['run_error'][:200]})" if row["run_error"] else "")
                table.add_row(row["table_name"], row["status"], versions, run, checks, row["drift"])
            Console().print(table)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.argument("table")
@catalog_command
def drift(table, catalog_path, target, as_json, debug):
    """Compare TABLE in the catalog with its _delta_log now.

    Exit 0: no drift; 3: new versions (behind); 4: landed log files changed or disappeared;
    5: a newer checkpoint disagrees with the catalog. The worst finding decides.
    """

    def body(reporter) -> int:
        report = detect_drift(catalog_from_options(target, catalog_path), table)
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
@click.argument("table")
@catalog_command
def finalize(table, catalog_path, target, as_json, debug):
    """Cut TABLE over to the catalog: re-validate, refuse on drift, record the cut-over version.

    After it, writers commit new versions through the catalog (delta2sql.writer.CatalogWriter).
    """
    def body(reporter) -> int:
        finalize_table(catalog_from_options(target, catalog_path), table, reporter)
        return 0

    _run(as_json, debug, body)


@main.command()
@click.argument("table")
@catalog_command
def rollback(table, catalog_path, target, as_json, debug):
    """Give TABLE back to its _delta_log.

    Before finalize: delete the table's catalog rows (only those). After finalize: write every
    version committed in the catalog since cut-over into _delta_log as JSON commits (never
    overwriting a file), check delta-rs reads the same snapshots, and mark the table file-based.
    """
    def body(reporter) -> int:
        rollback_table(catalog_from_options(target, catalog_path), table, reporter)
        return 0

    _run(as_json, debug, body)


def _migration_line(outcome, where: str) -> str:
    if outcome.status != "migrated":
        return f"[red]{outcome.name}: not migrated[/red]: {outcome.error}"
    how = {"catch_up": "caught up, read ", "resume": f"resumed after {outcome.batches_skipped} committed batches, read ",
           "up_to_date": "already up to date, read ", "finalized": "finalized, catalog tables built; read "}
    return (
        f"[green]{outcome.name}: migrated[/green] versions {outcome.replay_start_version}..{outcome.latest_version} "
        f"({how.get(outcome.mode, '')}{outcome.files:,} log files, {outcome.actions:,} actions, {outcome.bytes:,} bytes) "
        f"into {where}"
    )


@main.command()
@click.argument("tables", nargs=-1)
@click.option("--levels", default=",".join(LEVELS), show_default=True, help="Comma-separated validation levels.")
@click.option("--versions", "num_versions", type=click.IntRange(min=1), default=4, show_default=True,
              help="Snapshots compared with delta-rs per table: the latest, the replay start and evenly spaced ones.")
@catalog_command
def validate(tables, levels, num_versions, catalog_path, target, as_json, debug):
    """Compare migrated TABLES (default: all) with delta-rs and the log bytes; record the results."""

    def body(reporter) -> int:
        chosen = tuple(level.strip() for level in levels.split(",") if level.strip())
        unknown = set(chosen) - set(LEVELS)
        if unknown:
            raise click.BadParameter(f"unknown level(s) {', '.join(sorted(unknown))}; choose from {', '.join(LEVELS)}")
        catalog = catalog_from_options(target, catalog_path)
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


def _print_checks(checks) -> None:
    """One table per migrated table; expected/observed shown for what failed."""
    style = {"pass": "green", "warn": "yellow", "skip": "cyan", "fail": "red", "error": "magenta"}
    for name in sorted({c.table_name for c in checks}):
        table = Table(title=f"validation of {name}")
        for column in ("level", "check", "status", "expected / observed"):
            table.add_column(column, overflow="fold", no_wrap=column == "status")
        mine = sorted((c for c in checks if c.table_name == name), key=lambda c: (LEVELS.index(c.level), c.check_name))
        for c in mine:
            detail = "" if c.status == "pass" else f"{c.expected[:200]} / {c.observed[:200] or c.details[:200]}"
            table.add_row(c.level, c.check_name.removeprefix("assert_"), f"[{style[c.status]}]{c.status}[/]", detail)
        Console().print(table)


if __name__ == "__main__":
    main()
