"""`delta2sql metrics`: the catalog's state of every table, in Prometheus's text format.

It reads the catalog only, never a log: an on-call dashboard scraping it every 15 seconds must not
list a thousand `_delta_log` folders. So "versions behind" is as of the newest drift check the
catalog recorded (`drift`, `finalize` and `sync` record one, in `drift_checks`), less the versions
caught up since. The metrics are built at each scrape by a collector over the catalog, with the
official client library; docs/metrics.md lists them with their types.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from delta2sql.catalog import Catalog
from delta2sql.drift import EXIT_CODES
from delta2sql.extract import load_sql
from delta2sql.landing_schema import create_landing_tables, schema_lock
from delta2sql.lifecycle import Lease, RunStatus, TableStatus
from delta2sql.reference import create_reference_tables

PREFIX = "delta2sql"


def exposition(catalog: Catalog) -> str:
    """The metrics of every table in `catalog`, as one scrape would return them."""
    return generate_latest(registry(catalog)).decode("utf-8")


def registry(catalog: Catalog) -> CollectorRegistry:
    """The collector of `catalog`, whose tables are created here, once: a scrape only reads, as
    two DuckDB connections of one process creating a table at once conflict (a scrape during a
    resident sync's first pass did)."""
    with catalog.connect() as con, schema_lock(con):
        create_landing_tables(con)
        create_reference_tables(con)
    found = CollectorRegistry(auto_describe=False)
    found.register(CatalogCollector(catalog))
    return found


def serve(catalog: Catalog, port: int) -> None:
    """Serve the metrics on http://0.0.0.0:`port`/metrics from a daemon thread (a long-running
    `sync --every` or `worker`): each scrape reads the catalog afresh."""
    start_http_server(port, registry=registry(catalog))


def _seconds(value) -> float | None:
    """Epoch seconds of a catalog timestamp (naive UTC; SQLite returns the text it stored)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC).timestamp()


class CatalogCollector(Collector):
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def collect(self):
        with self.catalog.connect() as con:
            cursor = con.execute(load_sql("table_metrics.sql"))
            columns = [d[0] for d in cursor.description]
            tables = [dict(zip(columns, row)) for row in cursor.fetchall()]
            cursor = con.execute(
                "select table_name, mode, status, started_at, coalesce(finished_at, landed_at), owner_host, owner_pid, "
                "heartbeat_at, lease_expires_at from migration_runs order by started_at, run_id")
            runs = cursor.fetchall()
        yield from _table_metrics(tables)
        yield from _run_metrics(runs)


def _family(kind, name: str, documentation: str, labels=("table",), **options):
    return kind(f"{PREFIX}_{name}", documentation, labels=list(labels), **options)


def _table_metrics(tables: list[dict]):
    status = _family(GaugeMetricFamily, "table_status", "1 for the table's lifecycle status, 0 for the others "
                     "(ADR 0007)", ("table", "status"))
    latest = _family(GaugeMetricFamily, "table_latest_version", "The version the catalog publishes")
    built = _family(GaugeMetricFamily, "table_built_version", "The version the catalog tables are built up to")
    behind = _family(GaugeMetricFamily, "table_versions_behind", "Versions the log had after the catalog's, as of "
                     "the newest drift check, less those caught up since")
    drift_at = _family(GaugeMetricFamily, "table_drift_checked_timestamp_seconds", "When the log was last compared "
                       "with the catalog (drift, finalize, sync)")
    drift = _family(GaugeMetricFamily, "table_drift", "1 when the newest drift check found this kind of drift",
                    ("table", "kind"))
    synced = _family(GaugeMetricFamily, "table_last_sync_timestamp_seconds", "When the catalog last held all of the "
                     "log: the newest drift check that found nothing")
    batches = _family(CounterMetricFamily, "batches_committed", "Batches committed by the table's runs (rolled-back "
                      "ones no longer count)")
    actions = _family(CounterMetricFamily, "actions_committed", "Log actions (rows) landed by those batches")
    log_bytes = _family(CounterMetricFamily, "log_bytes_committed", "Log bytes landed by those batches")
    checks = _family(GaugeMetricFamily, "validation_checks", "Checks of the latest validation, by result",
                     ("table", "result"))
    validated = _family(GaugeMetricFamily, "validation_timestamp_seconds", "When the table was last validated")
    kinds = sorted(EXIT_CODES)
    for t in tables:
        name = t["table_name"]
        for value in TableStatus:
            status.add_metric([name, value], 1 if t["status"] == value else 0)
        latest.add_metric([name], t["latest_version"])
        if t["built_version"] is not None:
            built.add_metric([name], t["built_version"])
        if t["drift_checked_at"] is not None:
            behind.add_metric([name], max(0, t["drift_log_version"] - t["latest_version"]))
            drift_at.add_metric([name], _seconds(t["drift_checked_at"]))
            found = {f["kind"] for f in json.loads(t["drift_findings"])}
            for kind in kinds:
                drift.add_metric([name, kind], 1 if kind in found else 0)
        if t["in_sync_at"] is not None:
            synced.add_metric([name], _seconds(t["in_sync_at"]))
        batches.add_metric([name], t["batches_committed"])
        actions.add_metric([name], t["actions_committed"])
        log_bytes.add_metric([name], t["bytes_committed"])
        if t["validated_at"] is not None:
            for result in ("pass", "fail", "error"):
                checks.add_metric([name, result], t[{"pass": "passed", "fail": "failed", "error": "errored"}[result]])
            validated.add_metric([name], _seconds(t["validated_at"]))
    return [status, latest, built, behind, drift_at, drift, synced, batches, actions, log_bytes, checks, validated]


def _run_metrics(runs: list[tuple]):
    durations = _family(SummaryMetricFamily, "run_duration_seconds", "Finished runs (landing, and the build "
                        "after it), from start to their last move")
    last = _family(GaugeMetricFamily, "last_run_duration_seconds", "The newest finished run's duration",
                   ("table", "mode", "status"))
    interrupted = _family(GaugeMetricFamily, "run_interrupted", "1 when the table's newest run is `running` and its "
                          "owner is gone (no heartbeat): the next migrate takes it over")
    claimed = _family(GaugeMetricFamily, "owner_tables_claimed", "Tables whose run a live process is landing now, "
                      "by that process (host:pid)", ("owner",))
    finished: dict[str, list[float]] = {}
    last_finished: dict[str, tuple[str, str, float]] = {}
    newest: dict[str, Lease] = {}
    for table, mode, status, started_at, ended_at, *lease in runs:  # oldest first
        newest[table] = Lease.read(*lease, status)
        if status != RunStatus.RUNNING and ended_at is not None:
            seconds = _seconds(ended_at) - _seconds(started_at)
            finished.setdefault(table, []).append(seconds)
            last_finished[table] = (mode, status, seconds)
    owners: Counter[str] = Counter()
    for table, lease in newest.items():
        interrupted.add_metric([table], 1 if lease.interrupted else 0)
        if lease.landing and (lease.is_mine() or lease.is_alive()):
            owners[lease.owner] += 1
    for table, (mode, status, seconds) in last_finished.items():
        last.add_metric([table, mode, status], seconds)
    for table, seconds in finished.items():
        durations.add_metric([table], count_value=len(seconds), sum_value=sum(seconds))
    for owner, count in owners.items():
        claimed.add_metric([owner], count)
    return [durations, last, interrupted, claimed]
