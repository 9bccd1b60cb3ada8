"""`delta2sql drift TABLE`: has the `_delta_log` moved away from what the catalog holds?

Four findings, from mildest to worst, each with its own exit code so scripts can tell them apart:
- behind (3): the log has versions after the catalog's latest (catch up with `migrate`), or,
  for a finalized table, after its cut-over version (someone still writes the files);
- changed (4): a log file the catalog landed now has other bytes (sha256). In an object store, an
  object whose ETag, size and last-modified time all match what was landed is not re-read;
  any difference, or a missing ETag, and it is downloaded and hashed (a multipart upload's ETag
  is no content hash, so an ETag never stands in for sha256 across different objects);
- disappeared (4): a log file the catalog landed is gone (e.g. metadata cleanup);
- unreplayable (4): the log as it is now cannot be replayed at all (e.g. a commit gone mid-history);
- checkpoint disagrees (5): a checkpoint written since, at a version the catalog knows, does not
  hold the files the catalog says were live at that version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from delta2sql.catalog import Catalog, CatalogConnection
from delta2sql.errors import Delta2SqlError, DeltaLogError
from delta2sql.landing_schema import create_landing_tables
from delta2sql.lifecycle import DRIFT_CHECKED, sql_list
from delta2sql.log_listing import plan_segment, sidecar_files
from delta2sql.log_store import TableLog, open_log, session

EXIT_CODES = {"behind": 3, "changed": 4, "disappeared": 4, "unreplayable": 4, "checkpoint_disagrees": 5}


@dataclass
class DriftReport:
    table_name: str
    catalog_version: int
    log_version: int
    findings: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((EXIT_CODES[f["kind"]] for f in self.findings), default=0)


def resized_or_gone(log: TableLog, landed: list[tuple[str, int]]) -> tuple[list[str], list[str]]:
    """The cheap check, by listing only: landed files whose size changed, and those gone."""
    listed = log.sizes([log_file for log_file, _ in landed]) if landed else {}
    resized = [log_file for log_file, size in landed if listed.get(log_file, size) != size]
    gone = [log_file for log_file, _ in landed if log_file not in listed]
    return resized, gone


def _landed_file_findings(log: TableLog, landed: list[tuple[str, str, int, int, str | None]]) -> list[dict]:
    """Landed files gone or with other bytes. Only a file whose listing matches what was landed
    on every count, ETag included, is taken as unchanged without reading it."""
    listed = log.describe([log_file for log_file, *_ in landed]) if landed else {}
    findings, to_hash = [], []
    for log_file, sha256, size, modification_time, etag in landed:
        now = listed.get(log_file)
        if now is None:
            findings.append({"kind": "disappeared", "detail": log_file})
        elif etag is None or (now.etag, now.size_bytes, now.modification_time_ms) != (etag, size, modification_time):
            to_hash.append((now, sha256))
    log.fetch([now for now, _ in to_hash])
    findings += [{"kind": "changed", "detail": now.name} for now, sha256 in to_hash if log.digest(now.name).sha256 != sha256]
    return findings


def _added_paths(path: Path) -> set[str]:
    """The paths a checkpoint file (a part, a V2 top-level file or a sidecar) adds; a V2 top-level
    file whose adds live in sidecars has none, or no `add` column at all."""
    if path.suffix == ".json":
        actions = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        return {a["add"]["path"] for a in actions if "add" in a}
    if "add" not in pq.read_schema(path).names:
        return set()
    return {a["path"] for a in pq.read_table(path, columns=["add"]).column("add").to_pylist() if a}


def detect_drift(catalog: Catalog, table_name: str) -> DriftReport:
    with session(), catalog.connect() as con:
        row = con.execute("select table_uri, replay_start_version, coalesce(finalized_version, latest_version) "
                          f"from delta_log_tables where table_name = ? and status in ({sql_list(DRIFT_CHECKED)})",
                          [table_name]).fetchone()
        if row is None:
            raise Delta2SqlError(f"not migrated in this catalog: {table_name}")
        # a finalized table is compared as of its cut-over: later versions live in the catalog only
        uri, start, latest = row
        landed = con.execute("select log_file, sha256, size_bytes, modification_time, etag from delta_log_files "
                             "where table_name = ? and file_kind <> 'catalog_commit' and version <= ? order by log_file",
                             [table_name, latest]).fetchall()
        log = open_log(uri)
        file_findings = _landed_file_findings(log, landed)
        try:
            segment = plan_segment(log)
        except DeltaLogError as exc:
            report = DriftReport(table_name, latest, latest, [{"kind": "unreplayable", "detail": str(exc)}, *file_findings])
            _record(con, report)
            return report
        report = DriftReport(table_name, latest, segment.latest_version, file_findings)
        if segment.latest_version > latest:
            report.findings.insert(0, {"kind": "behind", "detail": f"{segment.latest_version - latest} new versions "
                                       f"({latest + 1}..{segment.latest_version})"})
        checkpoint = segment.checkpoint
        if checkpoint and start < checkpoint.version <= latest:
            live = {p for (p,) in con.execute(
                "select path from delta_files where table_name = ? and added_version <= ? "
                "and (removed_version is null or removed_version > ?)", [table_name, checkpoint.version, checkpoint.version],
            ).fetchall()}
            in_checkpoint = set()
            for f in [*checkpoint.files, *sidecar_files(checkpoint, segment.log)]:
                in_checkpoint |= _added_paths(f.path)
            if live != in_checkpoint:
                report.findings.append({"kind": "checkpoint_disagrees", "detail": (
                    f"checkpoint at version {checkpoint.version}: {len(in_checkpoint - live)} files not live in the "
                    f"catalog, {len(live - in_checkpoint)} live files missing from it")})
        _record(con, report)
    return report


def _record(con: CatalogConnection, report: DriftReport) -> None:
    """Keep what the log held at this check: `metrics` reports from it without listing the log."""
    create_landing_tables(con)
    con.execute("insert into drift_checks (table_name, checked_at, catalog_version, log_version, findings, exit_code) "
                "values (?, current_timestamp, ?, ?, ?, ?)",
                [report.table_name, report.catalog_version, report.log_version,
                 json.dumps(report.findings, ensure_ascii=False), report.exit_code])
