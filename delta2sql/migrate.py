"""Migrate tables: list each log, land its actions, then build the catalog marts with dbt.

Each table lands in its own transaction and independently of the others; one dbt build then
replays every landed table and runs the structure tests. Only a table whose landing, build and
structure tests all succeeded is marked `migrated`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from delta2sql.catalog import Catalog
from delta2sql.dbt_runner import failed_nodes, run_dbt
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import DEFAULT_BATCH_SIZE, land_segment
from delta2sql.log_listing import plan_segment
from delta2sql.progress import Reporter
from delta2sql.test_failures import ALL_TABLES, failing_tables


@dataclass(frozen=True)
class TableSpec:
    path: Path
    name: str
    version: int | None = None
    full_history: bool = False


@dataclass
class MigrationOutcome:
    name: str
    status: str  # migrated | failed
    error: str | None = None
    replay_start_version: int | None = None
    latest_version: int | None = None
    files: int = 0
    actions: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def _land(spec: TableSpec, catalog: Catalog, reporter: Reporter, batch_size: int, allow_unknown_actions: bool,
          commit_every: int | None) -> MigrationOutcome:
    try:
        segment = plan_segment(spec.path, spec.version, spec.full_history)
        for warning in segment.warnings:
            reporter.event("warning", table=spec.name, message=f"{spec.name}: {warning}")
        con = catalog.connect()
        try:
            stats = land_segment(con, segment, spec.name, reporter, batch_size, allow_unknown_actions, commit_every)
        finally:
            con.close()
    except Delta2SqlError as exc:
        reporter.event("table_failed", table=spec.name, message=f"[red]{spec.name}: {exc}[/red]", error=str(exc))
        return MigrationOutcome(spec.name, "failed", error=str(exc))
    return MigrationOutcome(
        spec.name, "landed",
        replay_start_version=segment.replay_start_version, latest_version=segment.latest_version,
        files=stats.files, actions=stats.actions, bytes=stats.bytes, warnings=segment.warnings,
    )


def migrate_tables(
    specs: list[TableSpec],
    catalog: Catalog,
    reporter: Reporter,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_unknown_actions: bool = False,
    commit_every: int | None = None,
) -> list[MigrationOutcome]:
    outcomes = [_land(spec, catalog, reporter, batch_size, allow_unknown_actions, commit_every) for spec in specs]
    landed = [o for o in outcomes if o.status == "landed"]
    if not landed:
        return outcomes

    build = run_dbt(["build", "--exclude", "tag:snapshot", "tag:bytes", "--store-failures"], catalog, reporter)
    broken = failed_nodes(build)
    # a failed test whose stored failures name tables blames those tables; anything else
    # (model errors, skipped nodes, failed unit tests) blames every table of this build
    errors = [n for n in broken if n["status"] != "fail" or not n.get("relation_name")]
    con = catalog.connect()
    try:
        failing = failing_tables(con, [n for n in broken if n["status"] == "fail" and n.get("relation_name")])
        for outcome in landed:
            problems = [f"dbt {n['unique_id']} {n['status']}: {n.get('message')}" for n in errors]
            problems += [f"structure test {test} failed" for test in failing.get(outcome.name, []) + failing.get(ALL_TABLES, [])]
            if problems:
                outcome.status, outcome.error = "failed", "; ".join(problems)
                continue
            con.execute(
                "update delta_log_tables set status = 'migrated', migrated_at = current_timestamp where table_name = ?",
                [outcome.name],
            )
            outcome.status = "migrated"
    finally:
        con.close()
    return outcomes
