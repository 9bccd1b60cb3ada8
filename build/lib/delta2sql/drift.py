"""`delta2sql drift TABLE`: has the `_delta_log` moved away from what the catalog holds?

Four findings, from mildest to worst, each with its own exit code so scripts can tell them apart:
- behind (3): the log has versions after the catalog's latest (catch up with `migrate`), or,
  for a finalized table, after its cut-over version (someone still writes the files);
- changed (4): a log file the catalog landed now has other bytes (sha256);
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

from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError, DeltaLogError
from delta2sql.file_digest import digest_file
from delta2sql.log_listing import plan_segment, sidecar_files

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


def resized_or_gone(log_dir: Path, landed: list[tuple[str, int]]) -> tuple[list[str], list[str]]:
    """The cheap check, by listing only: landed files whose size changed, and those gone."""
    resized, gone = [], []
    for log_file, size in landed:
        try:
            if (log_dir / log_file).stat().st_size != size:
                resized.append(log_file)
        except FileNotFoundError:
            gone.append(log_file)
    return resized, gone


def _landed_file_findings(log_dir: Path, landed: list[tuple[str, str]]) -> list[dict]:
    findings = []
    for log_file, sha256 in landed:
        path = log_dir / log_file
        if not path.exists():
            findings.append({"kind": "disappeared", "detail": log_file})
        elif digest_file(path).sha256 != sha256:
            findings.append({"kind": "changed", "detail": log_file})
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
    with catalog.connect() as con:
        row = con.execute("select table_uri, replay_start_version, coalesce(finalized_version, latest_version) "
                          "from delta_log_tables where table_name = ? and status in ('migrated', 'finalized')",
                          [table_name]).fetchone()
        if row is None:
            raise Delta2SqlError(f"not migrated in this catalog: {table_name}")
        # a finalized table is compared as of its cut-over: later versions live in the catalog only
        uri, start, latest = row
        landed = con.execute("select log_file, sha256 from delta_log_files where table_name = ? "
                             "and file_kind <> 'catalog_commit' and version <= ?", [table_name, latest]).fetchall()
        file_findings = _landed_file_findings(Path(uri) / "_delta_log", landed)
        try:
            segment = plan_segment(uri)
        except DeltaLogError as exc:
            return DriftReport(table_name, latest, latest, [{"kind": "unreplayable", "detail": str(exc)}, *file_findings])
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
            for f in [*checkpoint.files, *sidecar_files(checkpoint, segment.log_dir)]:
                in_checkpoint |= _added_paths(f.path)
            if live != in_checkpoint:
                report.findings.append({"kind": "checkpoint_disagrees", "detail": (
                    f"checkpoint at version {checkpoint.version}: {len(in_checkpoint - live)} files not live in the "
                    f"catalog, {len(live - in_checkpoint)} live files missing from it")})
    return report
