"""`delta2sql sync`: keep a fleet's catalog following its logs, from cron or as a resident process.

One pass catches up every table of the manifest (`migrate_tables`: new tables are migrated,
interrupted runs resumed), validates the tables whose version moved since their last validation
(or whose last validation failed), and compares each migrated table with its log (`detect_drift`, which records
the check for `metrics`). A pass exits like `drift`: the worst finding's code (3, 4, 5), else 1 if
a table failed, else 0.

With `--every`, passes repeat until SIGTERM or Ctrl-C. A table that fails is retried after a
backoff that doubles with each failure in a row (1 minute up to an hour), while the others go on
at every pass; the metrics served with `--metrics-port` show the drift and the last clean sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from delta2sql.catalog import Catalog
from delta2sql.drift import detect_drift
from delta2sql.errors import Delta2SqlError
from delta2sql.lifecycle import DRIFT_CHECKED, sql_list
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.progress import Reporter
from delta2sql.runs import RunOptions
from delta2sql.validate import LEVELS, validate_tables

BACKOFF_SECONDS = 60  # after a table's first failure in a row; doubled with each next one
MAX_BACKOFF_SECONDS = 3600


@dataclass
class TableSync:
    name: str
    status: str  # in_sync | drift | failed | backing_off
    from_version: int | None = None
    to_version: int | None = None
    validated: bool = False
    drift_exit_code: int = 0
    findings: list[dict] = field(default_factory=list)
    error: str | None = None
    retry_in_seconds: float | None = None


@dataclass
class Backoff:
    """Failures in a row per table, and when each may be tried again (monotonic seconds)."""

    failures: dict[str, int] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)

    def due(self, name: str, now: float) -> bool:
        return self.retry_at.get(name, 0.0) <= now

    def failed(self, name: str, now: float) -> float:
        self.failures[name] = self.failures.get(name, 0) + 1
        delay = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (self.failures[name] - 1))
        self.retry_at[name] = now + delay
        return delay

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)
        self.retry_at.pop(name, None)


def exit_code(results: list[TableSync]) -> int:
    worst = max((r.drift_exit_code for r in results), default=0)
    return worst or (1 if any(r.status == "failed" for r in results) else 0)


def sync_pass(specs: list[TableSpec], catalog: Catalog, reporter: Reporter, options: RunOptions, parallel: int,
              backoff: Backoff, levels: tuple[str, ...] = LEVELS, pass_number: int = 1) -> list[TableSync]:
    now = time.monotonic()
    due = [spec for spec in specs if backoff.due(spec.name, now)]
    results = {spec.name: TableSync(spec.name, "backing_off", retry_in_seconds=backoff.retry_at[spec.name] - now)
               for spec in specs if spec not in due}
    before = _versions(catalog)
    for outcome in migrate_tables(due, catalog, reporter, options, parallel) if due else []:
        result = results[outcome.name] = TableSync(outcome.name, "in_sync", before.get(outcome.name),
                                                   outcome.latest_version)
        if outcome.status != "migrated":
            result.status, result.error = "failed", outcome.error
    caught_up = [name for name, r in results.items() if r.status == "in_sync"]
    # the moment the catalog shows the new versions, before the slower validation and comparison:
    # what a resident sync's catch-up latency is (README, scripts/bench_catch_up.py)
    seconds = time.monotonic() - now
    reporter.event("sync_caught_up", pass_number=pass_number, tables=len(caught_up), seconds=round(seconds, 3),
                   versions={name: results[name].to_version for name in caught_up},
                   message=f"sync pass {pass_number}: {len(caught_up)} tables caught up in {seconds:.1f} s")
    to_validate = _needing_validation(catalog, caught_up)
    if to_validate:
        try:
            checks = validate_tables(catalog, reporter, to_validate, levels)
        except Delta2SqlError as exc:  # the references could not be loaded: every table of the run failed
            checks = []
            for name in to_validate:
                results[name].status, results[name].error = "failed", f"validation: {exc}"
        for name in to_validate:
            results[name].validated = True
            failed = sorted({c.check_name for c in checks if c.table_name == name and c.failed})
            if failed:
                results[name].status, results[name].error = "failed", "validation failed: " + ", ".join(failed)
    compared = _drift_checked(catalog, [spec.name for spec in due])
    for name in compared:  # a table whose catch-up failed too: drift says why (say, a landed commit changed)
        result = results[name]
        try:
            report = detect_drift(catalog, name)
        except Delta2SqlError as exc:
            if result.status != "failed":
                result.status, result.error = "failed", f"drift: {exc}"
            continue
        result.findings, result.drift_exit_code = report.findings, report.exit_code
        if report.findings and result.status == "in_sync":
            result.status = "drift"
    ended = time.monotonic()
    for result in results.values():
        if result.status == "failed":
            result.retry_in_seconds = backoff.failed(result.name, ended)
        elif result.status != "backing_off":
            backoff.succeeded(result.name)
    return [results[spec.name] for spec in specs]


def _versions(catalog: Catalog) -> dict[str, int]:
    with catalog.connect() as con:
        if not con.relation_exists("delta_log_tables"):
            return {}
        return dict(con.execute("select table_name, latest_version from delta_log_tables").fetchall())


def _drift_checked(catalog: Catalog, names: list[str]) -> list[str]:
    """Of `names`, the tables `drift` compares (migrated or finalized)."""
    with catalog.connect() as con:
        if not con.relation_exists("delta_log_tables"):
            return []
        found = {name for (name,) in con.execute(
            f"select table_name from delta_log_tables where status in ({sql_list(DRIFT_CHECKED)})").fetchall()}
    return [name for name in names if name in found]


def _needing_validation(catalog: Catalog, names: list[str]) -> list[str]:
    """Of `names`, those never validated, validated at another version than their latest, or
    whose latest validation had a failed check."""
    if not names:
        return []
    with catalog.connect() as con:
        if not con.relation_exists("validation_runs"):
            return sorted(names)
        rows = con.execute(
            """
            select tables.table_name, tables.latest_version,
                   (select runs.validated_version from validation_runs as runs
                    where runs.table_name = tables.table_name order by runs.checked_at desc limit 1),
                   (select count(*) from validation_results as results
                    where results.table_name = tables.table_name and results.status in ('fail', 'error')
                      and results.checked_at = (select max(latest.checked_at) from validation_results as latest
                                                where latest.table_name = tables.table_name))
            from delta_log_tables as tables
            """
        ).fetchall()
    wanted = set(names)
    return sorted(name for name, latest, validated, failures in rows
                  if name in wanted and (validated != latest or failures))
