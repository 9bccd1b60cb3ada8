"""`delta2sql assess`: what migrating each table of a lake would meet, before anything is migrated.

A team books a maintenance window from this, so it must be cheap enough to run over a whole
estate and say no more than it knows. It reads, per table, what `plan_segment` reads to choose
the replay (the listing from the `_last_checkpoint` hint, that hint, the footers of the chosen
checkpoint), the `.crc` of the latest version where there is one, and the newest protocol and
metaData: from that `.crc`, else from the newest JSON commits after the replay start (at most
`PROTOCOL_SCAN_COMMITS` of them), else from the checkpoint's `protocol` and `metaData` columns
alone. No other checkpoint column is read, and no commit beyond those; in an object store the
checkpoint is read in place by ranged GETs (its footer, and those columns), never downloaded
whole. It writes nothing.

A table is *blocked* when `migrate` would refuse it for a reason these reads show, in the words
`migrate` uses (the same functions raise them). *Ready* tables may still be refused for what
only a full read shows (README, "Assess a lake").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from delta2sql import calibration
from delta2sql.batches import default_checkpoint_batch_rows
from delta2sql.errors import Delta2SqlError, DeltaLogError
from delta2sql.estimate import estimate, estimate_lines, seconds_range, workload
from delta2sql.extract import CATALOG_MANAGED_FEATURES, catalog_managed_refusal, protocol_refusal
from delta2sql.log_listing import CheckpointFooters, LogSegment, checkpoint_footers, plan_segment
from delta2sql.log_store import is_object_store_uri, open_log, session
from delta2sql.migrate import TableSpec
from delta2sql.progress import Reporter

# Newest JSON commits searched for protocol and metaData before the checkpoint's own columns.
PROTOCOL_SCAN_COMMITS = 100


@dataclass
class TableAssessment:
    name: str
    uri: str
    status: str = "ready"  # ready | blocked
    blockers: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    latest_version: int | None = None
    replay_start_version: int | None = None
    checkpoint_kind: str | None = None  # classic | multipart | v2 | None (JSON history from version 0)
    checkpoint_version: int | None = None
    checkpoint_files: int = 0
    checkpoint_bytes: int = 0
    checkpoint_actions: int = 0  # from the Parquet footers
    commit_files: int = 0  # JSON commits after the replay start
    commit_bytes: int = 0
    live_files: int | None = None
    live_files_source: str | None = None  # "<version>.crc" | "_last_checkpoint (version N)"
    min_reader_version: int | None = None
    min_writer_version: int | None = None
    reader_features: list[str] = field(default_factory=list)
    writer_features: list[str] = field(default_factory=list)
    protocol_source: str | None = None  # where the newest protocol was read
    estimate: dict | None = None  # estimate.Estimate.as_dict() of migrating it alone into the target
    estimate_basis: str = ""  # the calibration it used, or why there is none

    @property
    def log_bytes(self) -> int:
        """Bytes `migrate` reads from the log: the checkpoint and the commits after it."""
        return self.checkpoint_bytes + self.commit_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "log_bytes": self.log_bytes}


def discover_tables(location: str, recursive: bool) -> list[str]:
    """Table roots at `location`: itself when it has a `_delta_log`, else (with `recursive`)
    every folder below it that has one. A table's own folders are not searched further."""
    if is_object_store_uri(location):
        return _discover_in_store(location, recursive)
    root = Path(location)
    if not root.is_dir():
        raise Delta2SqlError(f"{location}: no such directory")
    if (root / "_delta_log").is_dir():
        return [str(root)]
    if not recursive:
        raise Delta2SqlError(f"{location}: not a Delta table (no _delta_log); give --recursive to search below it")
    found, pending = [], [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise Delta2SqlError(f"{folder}: cannot list: {exc.strerror}") from exc
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name.startswith((".", "_")):
                continue  # hidden folders, and _delta_log / _change_data / _sidecars of tables
            if os.path.isdir(os.path.join(entry.path, "_delta_log")):
                found.append(entry.path)
            else:
                pending.append(Path(entry.path))
    return sorted(found)


def _discover_in_store(location: str, recursive: bool) -> list[str]:
    with session():  # each prefix's store is let go (and its spool removed) once the search ends
        return _search_store(location.rstrip("/"), recursive)


def _search_store(root: str, recursive: bool) -> list[str]:
    folders = open_log(root).folders()
    if "_delta_log" in folders:
        return [root]
    if not recursive:
        raise Delta2SqlError(f"{root}: not a Delta table (no _delta_log/ under it); give --recursive to search below it")
    found, pending = [], [root]
    while pending:
        prefix = pending.pop()
        for name in open_log(prefix).folders():
            if name.startswith((".", "_")):
                continue
            child = f"{prefix}/{name}"
            (found if "_delta_log" in open_log(child).folders() else pending).append(child)
    return sorted(found)


def assess_table(spec: TableSpec, target: str = "duckdb") -> TableAssessment:
    """What `migrate` would meet on `spec`'s table, from listings, footers and the newest protocol,
    and how long migrating it alone into an empty catalog of `target` would take here."""
    log = open_log(spec.path)
    result = TableAssessment(spec.name, log.uri)
    try:
        segment = plan_segment(log, spec.version, spec.full_history, catalog_version=spec.catalog_version,
                               fetch_checkpoint=False)
    except DeltaLogError as exc:  # migrate plans with the same function: the same refusal, word for word
        result.status = "blocked"
        result.blockers.append(str(exc))
        return result
    result.warnings += segment.warnings
    result.latest_version = segment.latest_version
    result.replay_start_version = segment.replay_start_version
    result.commit_files = len(segment.commits)
    result.commit_bytes = sum(f.size_bytes for f in segment.commits)
    footers = checkpoint_footers(segment)
    if segment.checkpoint is not None:
        result.checkpoint_kind, result.checkpoint_version = segment.checkpoint.kind, segment.checkpoint.version
        result.checkpoint_files, result.checkpoint_actions = len(footers.files), footers.rows
        result.checkpoint_bytes = sum(f.size_bytes for f in footers.files)
    crc = _latest_crc(segment)
    _live_files(result, segment, crc)
    protocol, metadata, source, read_all = _newest_protocol_and_metadata(segment, crc, result.warnings)
    result.protocol_source = source
    _judge_protocol(result, spec, protocol, metadata, source, read_all)
    if result.status == "ready":
        _estimate(result, segment, footers, target)
    return result


def _estimate(result: TableAssessment, segment: LogSegment, footers: CheckpointFooters, target: str) -> None:
    """The table's estimate at this machine's calibration of `target` (its workload reads a
    sample of commits, so only when there is a calibration to use it with)."""
    found, result.estimate_basis = calibration.load(target)
    if found is not None:
        work = workload(segment, footers, default_checkpoint_batch_rows(target))
        timed = estimate(work, found.rates, result.estimate_basis)
        if footers.files and is_object_store_uri(result.uri):  # as `summary` counts them
            size = sum(f.size_bytes for f in footers.files) / 2**20
            timed.assumptions.append(f"the checkpoint's download ({size:,.1f} MiB) is not counted: assess reads its "
                                     "footer in place; `plan` times the download")
        result.estimate = timed.as_dict()


def _latest_crc(segment: LogSegment) -> dict | None:
    crc_file = segment.crc_files.get(segment.latest_version)
    if crc_file is None:
        return None
    data = segment.log.read_bytes(crc_file.name)
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None  # migrate's check reports an unreadable .crc; assess just does not use it


def _live_files(result: TableAssessment, segment: LogSegment, crc: dict | None) -> None:
    if crc is not None and isinstance(crc.get("numFiles"), int):
        result.live_files, result.live_files_source = crc["numFiles"], f"{segment.latest_version:020d}.crc"
        return
    data = segment.log.read_bytes("_last_checkpoint")
    try:
        hint = json.loads(data) if data else {}
    except ValueError:
        return
    if hint.get("version") == segment.latest_version and isinstance(hint.get("numOfAddFiles"), int):
        result.live_files, result.live_files_source = hint["numOfAddFiles"], f"_last_checkpoint (version {hint['version']})"


def _newest_protocol_and_metadata(segment: LogSegment, crc: dict | None,
                                  warnings: list[str]) -> tuple[tuple | None, tuple | None, str | None, bool]:
    """((version, protocol), (version, metaData), where they were read, whether the whole replay
    was read for them); either action may be None."""
    if crc is not None and isinstance(crc.get("protocol"), dict) and isinstance(crc.get("metadata"), dict):
        version = segment.latest_version
        return (version, crc["protocol"]), (version, crc["metadata"]), f"{version:020d}.crc", False
    newest = segment.commits[::-1][:PROTOCOL_SCAN_COMMITS]
    first = segment.commits[0] if segment.checkpoint is None and segment.commits else None
    scanned = newest + ([first] if first is not None and first not in newest else [])
    segment.log.fetch(scanned)
    protocol = metadata = None
    for commit in scanned:  # newest first: the first found of each is the one in force
        found_protocol, found_metadata = _protocol_and_metadata_lines(segment.log.read_bytes(commit.name) or b"")
        protocol = protocol or (found_protocol and (commit.version, found_protocol))
        metadata = metadata or (found_metadata and (commit.version, found_metadata))
        if protocol and metadata and commit in newest:  # newer than every commit not read
            return protocol, metadata, f"JSON commits {commit.version}..{segment.latest_version}", False
        if protocol and metadata:
            break
    if segment.checkpoint is not None:
        from_checkpoint = _checkpoint_protocol_and_metadata(segment)
        protocol, metadata = protocol or from_checkpoint[0], metadata or from_checkpoint[1]
    source = (f"checkpoint at version {segment.checkpoint.version}" if segment.checkpoint
              else f"JSON commit {first.version}" if first else None)
    unread = len(segment.commits) - len(scanned)
    if unread > 0:
        warnings.append(f"{unread:,} JSON commits between the replay start and the newest {len(newest):,} were not "
                        "read for protocol or metaData changes: `migrate` reads them all")
    return protocol, metadata, source, unread <= 0


def _protocol_and_metadata_lines(data: bytes) -> tuple[dict | None, dict | None]:
    """The protocol and metaData actions of one JSON commit (it holds at most one of each); a line
    that does not parse is skipped: migrate names it, a full read is its job."""
    protocol = metadata = None
    for line in data.splitlines():
        if b'"protocol"' not in line and b'"metaData"' not in line:
            continue
        try:
            action = json.loads(line)
        except ValueError:
            continue
        if protocol is None and isinstance(action.get("protocol"), dict):
            protocol = action["protocol"]
        if metadata is None and isinstance(action.get("metaData"), dict):
            metadata = action["metaData"]
    return protocol, metadata


def _checkpoint_protocol_and_metadata(segment: LogSegment) -> tuple[tuple | None, tuple | None]:
    """The checkpoint's protocol and metaData rows, reading those two columns and nothing else."""
    version, protocol, metadata = segment.checkpoint.version, None, None
    for f in segment.checkpoint.files:
        if f.name.endswith(".json"):  # a V2 checkpoint's top-level JSON file: a few lines
            rows = [json.loads(line) for line in (segment.log.read_bytes(f.name) or b"").splitlines() if line.strip()]
        else:
            parquet = segment.log.open_parquet(f.name, f.size_bytes)  # in place: no download
            wanted = [c for c in ("protocol", "metaData") if c in parquet.schema_arrow.names]
            columns = parquet.read(columns=wanted) if wanted else None
            # one row each among millions of nulls: only the valid values become Python objects
            rows = [] if columns is None else [{name: value} for name in wanted for value in
                                               columns.column(name).filter(pc.is_valid(columns.column(name))).to_pylist()]
        for row in rows:
            protocol = protocol or (row.get("protocol") and (version, row["protocol"]))
            metadata = metadata or (row.get("metaData") and (version, row["metaData"]))
    return protocol, metadata


def _judge_protocol(result: TableAssessment, spec: TableSpec, protocol: tuple | None, metadata: tuple | None,
                    source: str | None, read_all: bool) -> None:
    """Blockers from the newest protocol and metaData, in the order and words of
    `extract.check_replayable`. A missing action blocks only when every commit of the replay was read."""
    for action, found in (("protocol", protocol), ("metaData", metadata)):
        if found is None and read_all:
            result.blockers.append(f"no {action} action in the replayed log (versions {result.replay_start_version}.."
                                   f"{result.latest_version}); not a valid Delta table")
        elif found is None:
            result.warnings.append(f"no {action} found in {source or 'the log'}; `migrate` searches the whole replay")
    if metadata is not None and protocol is not None:
        version, action = metadata
        if not action.get("id") or not action.get("schemaString"):
            result.blockers.append(f"unsupported: the current metaData (version {version}) has no id or schemaString, "
                                   "both required by the protocol")
    if protocol is not None:
        version, action = protocol
        result.min_reader_version = action.get("minReaderVersion")
        result.min_writer_version = action.get("minWriterVersion")
        result.reader_features = list(action.get("readerFeatures") or [])
        result.writer_features = list(action.get("writerFeatures") or [])
        refusal = protocol_refusal(result.min_reader_version or 1, result.reader_features)
        if refusal:
            result.blockers.append(f"{refusal} (protocol of version {version})")
        elif CATALOG_MANAGED_FEATURES & set(result.reader_features) and spec.catalog_version is None:
            result.blockers.append(catalog_managed_refusal(version))
    if result.blockers:
        result.status = "blocked"


def assess_tables(specs: list[TableSpec], reporter: Reporter, target: str = "duckdb") -> list[TableAssessment]:
    """Each table in turn, with progress; a table that cannot be read is blocked, not fatal."""
    results = []
    with session(), reporter.task(f"assessing {len(specs):,} tables", None) as advance:
        for spec in specs:
            try:
                result = assess_table(spec, target)
            except Delta2SqlError as exc:  # unreachable, unreadable: say which table, go on
                result = TableAssessment(spec.name, str(spec.path), "blocked", [str(exc)])
            results.append(result)
            reporter.event("assessment", message=describe(result), **result.as_dict())
            advance(0, tables=1)
    return results


def describe(a: TableAssessment) -> str:
    """A table's assessment, as a few lines for a terminal."""
    lines = [f"{a.name}: {a.status.upper()}  {a.uri}"]
    if a.latest_version is not None:
        checkpoint = (f"{a.checkpoint_kind} checkpoint at version {a.checkpoint_version} ({a.checkpoint_files} files, "
                      f"{a.checkpoint_actions:,} actions)" if a.checkpoint_kind else "no checkpoint: JSON from version 0")
        lines += [
            f"  versions     {a.replay_start_version}..{a.latest_version}; {checkpoint}",
            f"  JSON commits {a.commit_files:,} files, {a.commit_bytes:,} bytes; log to read {a.log_bytes:,} bytes",
            f"  live files   {'unknown' if a.live_files is None else f'{a.live_files:,}'}"
            + (f" (from {a.live_files_source})" if a.live_files_source else " (no .crc or _last_checkpoint at the latest version)"),
            f"  protocol     reader {a.min_reader_version}, writer {a.min_writer_version}"
            + (f"; reader features {', '.join(a.reader_features)}" if a.reader_features else "")
            + (f"; writer features {', '.join(a.writer_features)}" if a.writer_features else "")
            + (f" (from {a.protocol_source})" if a.protocol_source else ""),
        ]
    if a.status == "ready":
        lines += ["  " + line for line in estimate_lines(a.estimate, a.estimate_basis)]
    lines += [f"  blocked: {b}" for b in a.blockers]
    lines += [f"  warning: {w}" for w in a.warnings]
    return "\n".join(lines)


def summary(assessments: list[TableAssessment]) -> dict:
    """The fleet: ready and blocked tables, what is to read, how long migrating the ready ones one
    after another would take, and the order `--parallel` should take them in: the longest first
    (by estimate, else by log bytes), so the longest table does not start last."""
    ready = [a for a in assessments if a.status == "ready"]
    order = sorted(ready, key=lambda a: (-(a.estimate or {}).get("seconds", 0), -a.log_bytes, a.name))
    timed = [a.estimate for a in ready if a.estimate]
    every = bool(timed) and len(timed) == len(ready)  # a fleet's estimate needs every ready table's

    def total(key: str) -> float | None:
        return round(sum(e[key] for e in timed), 1) if every else None

    return {
        "tables": len(assessments),
        "ready": len(ready),
        "blocked": len(assessments) - len(ready),
        "blocked_tables": [a.name for a in assessments if a.status == "blocked"],
        "log_bytes": sum(a.log_bytes for a in ready),
        "checkpoint_actions": sum(a.checkpoint_actions for a in ready),
        "commit_files": sum(a.commit_files for a in ready),
        "migration_order": [a.name for a in order],
        # one table after another; each table's estimate counts its own process and build
        "estimated_seconds": total("seconds"),
        "estimate_low_seconds": total("low"),
        "estimate_high_seconds": total("high"),
        # tables in an object store whose checkpoint's download the estimate leaves out (read in place)
        "downloads_not_estimated": [a.name for a in ready if a.estimate and a.checkpoint_files
                                    and is_object_store_uri(a.uri)],
    }


def markdown(assessments: list[TableAssessment]) -> str:
    """A document a team attaches to its migration plan."""
    fleet = summary(assessments)
    totals = (f"{fleet['tables']} tables: **{fleet['ready']} ready**, **{fleet['blocked']} blocked**. Ready tables "
              f"hold {fleet['checkpoint_actions']:,} checkpoint actions and {fleet['commit_files']:,} JSON commits "
              f"({fleet['log_bytes']:,} bytes of log to read)."
              + (f" Migrating them one after another: "
                 f"**{seconds_range(fleet['estimate_low_seconds'], fleet['estimate_high_seconds'])}**."
                 if fleet["estimated_seconds"] is not None else ""))
    header = ("| table | status | versions | checkpoint | checkpoint actions | JSON commits | log bytes | live files "
              "| reader / writer | features | estimate |")
    out = ["# Delta table assessment", "", totals, "", header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for a in assessments:
        features = ", ".join(sorted(set(a.reader_features) | set(a.writer_features)))
        versions = "" if a.latest_version is None else f"{a.replay_start_version}..{a.latest_version}"
        checkpoint = f"{a.checkpoint_kind} @ {a.checkpoint_version}" if a.checkpoint_kind else ""
        live = "" if a.live_files is None else f"{a.live_files:,}"
        protocol = "" if a.min_reader_version is None else f"{a.min_reader_version} / {a.min_writer_version}"
        out.append(f"| {_cell(a.name)} | {a.status} | {versions} | {checkpoint} | {a.checkpoint_actions:,} | "
                   f"{a.commit_files:,} | {a.log_bytes:,} | {live} | {protocol} | {_cell(features)} | "
                   f"{a.estimate['range'] if a.estimate else ''} |")
    blocked = [a for a in assessments if a.blockers]
    if blocked:
        out += ["", "## Blockers", ""] + [f"- **{_cell(a.name)}**: {_cell(b)}" for a in blocked for b in a.blockers]
    warned = [a for a in assessments if a.warnings]
    if warned:
        out += ["", "## Warnings", ""] + [f"- **{_cell(a.name)}**: {_cell(w)}" for a in warned for w in a.warnings]
    if fleet["estimated_seconds"] is None and any(a.status == "ready" for a in assessments):
        basis = next(a.estimate_basis for a in assessments if a.status == "ready" and not a.estimate)
        out += ["", f"No time estimate: {_cell(basis)}."]
    elif fleet["estimated_seconds"] is not None:
        basis = next(a.estimate["calibration"] for a in assessments if a.estimate)
        out += ["", (f"Estimates: each table alone into an empty catalog, at the rates {_cell(basis)}; each range "
                     "is its midpoint ±20%.")]
        if fleet["downloads_not_estimated"]:
            out += ["", ("Not counted: the checkpoint downloads of the tables in object stores ("
                         f"{_cell(', '.join(fleet['downloads_not_estimated']))}); `delta2sql plan` times them.")]
    if fleet["migration_order"]:
        out += ["", "## Order for `migrate --parallel` (longest first)", ""]
        out += [f"{i}. {_cell(name)}" for i, name in enumerate(fleet["migration_order"], start=1)]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return text.replace("|", "\\|").replace("\n", " ")
