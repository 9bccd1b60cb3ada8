"""List a `_delta_log` and choose the log segment to replay.

The segment is the newest usable checkpoint at or below the wanted version plus the JSON
commits after it (or every JSON commit from version 0 with `full_history`). This follows the
listing rules of the Delta protocol and delta-kernel-rs: `_last_checkpoint` is only a hint,
incomplete multi-part checkpoints are ignored, several complete checkpoints of one version are
ranked V2 (UUID-named) > multi-part > classic, and a gap in the commits to replay is an error.

Listing is file-system work, not replay, so it lives in Python; the replay itself is SQL.
"""

from __future__ import annotations

import gc
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from delta2sql.errors import Delta2SqlError, DeltaLogError, ObjectGoneError
from delta2sql.log_store import LocalLog, LogObject, ObjectStoreLog, TableLog, open_log

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTIPART_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_V2_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.([0-9a-fA-F-]{36})\.(json|parquet)$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_COMPACTION = re.compile(r"^(\d{20})\.(\d{20})\.compacted\.json$")
_STAGED_COMMIT = re.compile(r"^_staged_commits/(\d{20})\.([0-9a-fA-F-]{36})\.json$")

# When one version has several complete checkpoints, prefer the richest (delta-kernel-rs order).
_CHECKPOINT_RANK = {"v2": 0, "multipart": 1, "classic": 2}


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file of `_delta_log` (or of `_delta_log/_sidecars`); `path` is where its bytes are read
    locally (for an object store, its copy in the spool, there once `TableLog.fetch` ran).

    A segment holds one per commit, so each shares its log's `local_dir` and builds `path` only
    when the file is read: with a Path per file (and the listing's DirEntry objects, see
    `LocalLog.list`), planning a 1,000,000-commit log took 28.7 s and 1.19 GB; 10.1 s and 0.4 GB
    now."""

    local_dir: Path  # the log's own object, shared
    name: str  # relative to _delta_log, e.g. "00000000000000000003.json" or "_sidecars/x.parquet"
    version: int | None
    size_bytes: int
    modification_time_ms: int
    etag: str | None = None  # an object store's ETag (or GCS generation); None on a file system

    @property
    def path(self) -> Path:
        return self.local_dir / self.name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A complete checkpoint: every file of it, in part order."""

    version: int
    kind: str  # "classic" | "multipart" | "v2"
    files: tuple[LogFile, ...]


@dataclass
class LogSegment:
    """What a replay reads: an optional checkpoint, then contiguous JSON commits."""

    log: TableLog
    latest_version: int
    checkpoint: Checkpoint | None
    commits: list[LogFile]
    checkpoint_commit: LogFile | None  # the JSON commit of the checkpoint version, if kept
    crc_files: dict[int, LogFile]
    warnings: list[str] = field(default_factory=list)
    catalog_version: int | None = None  # the latest version a catalog ratified (catalog-managed tables)

    @property
    def replay_start_version(self) -> int:
        return self.checkpoint.version if self.checkpoint else self.commits[0].version

    @property
    def uri(self) -> str:
        return self.log.uri

    @property
    def log_dir(self):
        """The log's location as messages name it (a path, or a URI)."""
        return self.log.log_dir


def _log_file(log: TableLog, listed: LogObject, version: int | None) -> LogFile:
    return LogFile(log.local_dir, listed.name, version, listed.size_bytes,
                   listed.modification_time_ms, listed.etag)


def _read_last_checkpoint_hint(log: TableLog, warnings: list[str]) -> int | None:
    data = log.read_bytes("_last_checkpoint")
    if data is None:
        return None
    try:
        return int(json.loads(data.decode("utf-8"))["version"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        warnings.append(f"_last_checkpoint is unreadable ({exc.__class__.__name__}); listed _delta_log instead")
        return None


def _group_checkpoints(listed: list[LogObject], log: TableLog) -> dict[int, list[Checkpoint]]:
    """Group checkpoint files per version; multi-part ones only when every part is present."""
    by_version: dict[int, list[Checkpoint]] = {}
    multipart: dict[tuple[int, int], dict[int, LogFile]] = {}
    for obj in listed:
        if ".checkpoint." not in obj.name or obj.size_bytes == 0:
            continue  # zero-byte checkpoints are skipped by kernel listing
        if m := _CLASSIC_CHECKPOINT.match(obj.name):
            v = int(m[1])
            by_version.setdefault(v, []).append(Checkpoint(v, "classic", (_log_file(log, obj, v),)))
        elif m := _V2_CHECKPOINT.match(obj.name):
            v = int(m[1])
            by_version.setdefault(v, []).append(Checkpoint(v, "v2", (_log_file(log, obj, v),)))
        elif m := _MULTIPART_CHECKPOINT.match(obj.name):
            v, part, parts = int(m[1]), int(m[2]), int(m[3])
            multipart.setdefault((v, parts), {})[part] = _log_file(log, obj, v)
    for (v, parts), found in multipart.items():
        if sorted(found) == list(range(1, parts + 1)):
            files = tuple(found[i] for i in range(1, parts + 1))
            by_version.setdefault(v, []).append(Checkpoint(v, "multipart", files))
    for candidates in by_version.values():
        candidates.sort(key=lambda c: _CHECKPOINT_RANK[c.kind])
    return by_version


def _incomplete_multipart_versions(listed: list[LogObject], complete: dict[int, list[Checkpoint]]) -> set[int]:
    seen = {int(m[1]) for o in listed if (m := _MULTIPART_CHECKPOINT.match(o.name))}
    return {v for v in seen if not any(c.kind == "multipart" for c in complete.get(v, []))}


def _sidecar_paths(parquet: pq.ParquetFile) -> list[str]:
    """The paths of a Parquet checkpoint's `sidecar` rows, read one row group at a time and only
    that field. Read whole, the all-null `sidecar` column of a classic checkpoint written by
    delta-rs (1.72M rows in two row groups) grew the process by 84 MiB for good, and the landing's
    DuckDB, capped by what the process already holds, then ran out of memory reading that
    checkpoint's 1M-row groups (benchmark's wide_delta_rs, 2026-12-08); this way, by 18 MiB."""
    if "sidecar" not in parquet.schema_arrow.names:
        return []
    sidecar = parquet.schema_arrow.field("sidecar").type
    if not pa.types.is_struct(sidecar) or sidecar.get_field_index("path") < 0:  # outside the protocol: read whole
        return [row["path"] for row in parquet.read(columns=["sidecar"]).column("sidecar").to_pylist() if row]
    paths = []
    for group in range(parquet.metadata.num_row_groups):
        rows = parquet.read_row_group(group, columns=["sidecar.path"]).column("sidecar")
        paths += [row["path"] for row in rows.filter(pc.is_valid(rows)).to_pylist()]
    return paths


def sidecar_files(checkpoint: Checkpoint, log: TableLog, fetch: bool = True) -> list[LogFile]:
    """The `_sidecars/` files a V2-spec checkpoint references, fetched unless `fetch` is false (a
    Parquet checkpoint is then read in place, its `sidecar` column only); an error names any
    that is missing. They are found by the names the checkpoint gives: `_sidecars/` is never listed.

    Any single-file checkpoint may follow the V2 spec: a UUID-named one always does, and a
    classic `N.checkpoint.parquet` does when the table has the v2Checkpoint feature (PROTOCOL.md,
    "Allowed combinations for checkpoint spec <-> checkpoint file naming"). Its `sidecar` rows
    then hold where the file actions are, so whatever its name, a checkpoint with `sidecar`
    rows is followed into them; multi-part checkpoints are V1 only.
    """
    if checkpoint.kind == "multipart":
        return []
    top = checkpoint.files[0]
    if top.name.endswith(".json"):
        log.fetch([top])
        paths = []
        for line in top.path.read_text(encoding="utf-8").splitlines():
            if line.strip() and "sidecar" in (action := json.loads(line)):
                paths.append(action["sidecar"]["path"])
    else:
        if fetch:
            log.fetch([top])
        paths = _sidecar_paths(log.open_parquet(top.name, top.size_bytes))
    listed = []
    for rel in paths:
        obj = log.stat(f"_sidecars/{rel}" if "/" not in rel else rel)
        if obj is None:
            raise DeltaLogError(f"{log.log_dir / top.name}: references sidecar {rel}, which does not exist")
        listed.append(obj)
    if fetch:
        log.fetch(listed)
    return [replace(_log_file(log, obj, checkpoint.version), name=f"_sidecars/{Path(obj.name).name}") for obj in listed]


@dataclass(frozen=True)
class CheckpointFooters:
    """The chosen checkpoint's files (with the sidecars it references) as their Parquet footers
    describe them, no row read: what `plan` and `assess` report of it, and what landing it costs
    (`estimate.Workload`)."""

    files: list[LogFile]
    rows: int
    row_groups: int
    read_bytes: int  # decompressed bytes of the columns landing reads (not the `*_parsed` copies)


def checkpoint_footers(segment: LogSegment) -> CheckpointFooters:
    if segment.checkpoint is None:
        return CheckpointFooters([], 0, 0, 0)
    files = [*segment.checkpoint.files, *sidecar_files(segment.checkpoint, segment.log, fetch=False)]
    footers = [segment.log.open_parquet(f.name, f.size_bytes).metadata for f in files if f.name.endswith(".parquet")]
    groups = [m.row_group(i) for m in footers for i in range(m.num_row_groups)]
    read_bytes = sum(group.column(j).total_uncompressed_size for group in groups for j in range(group.num_columns)
                     if "_parsed" not in group.column(j).path_in_schema)
    return CheckpointFooters(files, sum(m.num_rows for m in footers), len(groups), read_bytes)


def _ratified_staged_commits(log: TableLog, last_published: int, catalog_version: int) -> dict[int, LogFile]:
    """The staged commits of the versions after the last published one up to the catalog's
    ratified version (PROTOCOL.md, "Catalog-managed tables"): exactly one per version, else the
    catalog alone knows which proposal it ratified. A published `<v>.json` always wins: its
    existence proves v ratified, and a staged file of a published version may be a losing one."""
    found: dict[int, list[LogObject]] = {}
    for obj in log.list(offset=f"_staged_commits/{last_published + 1:020d}", prefix="_staged_commits/"):
        if (m := _STAGED_COMMIT.match(obj.name)) and last_published < int(m[1]) <= catalog_version:
            found.setdefault(int(m[1]), []).append(obj)
    staged_dir = log.log_dir / "_staged_commits"
    staged = {}
    for version in range(last_published + 1, catalog_version + 1):
        objects = sorted(found.get(version, []), key=lambda o: o.name)
        if not objects:
            raise DeltaLogError(f"{log.log_dir}: the catalog ratified version {catalog_version}, but version {version} "
                                f"is neither published ({version:020d}.json) nor staged in _staged_commits/")
        if len(objects) > 1:
            names = ", ".join(o.name.removeprefix("_staged_commits/") for o in objects)
            raise DeltaLogError(f"{staged_dir}: {len(objects)} staged commits for version {version} "
                                f"({names}); only the catalog knows which one it ratified")
        staged[version] = _log_file(log, objects[0], version)
    return staged


def _checkpoint_is_readable(checkpoint: Checkpoint, log: TableLog, fetch: bool) -> str | None:
    """Return why a checkpoint cannot be used, or None when its files open. With `fetch` false,
    a Parquet file of an object store is judged by its footer, read in place (`assess`), not
    downloaded whole as the landing needs it."""
    log.fetch([f for f in checkpoint.files if fetch or not f.name.endswith(".parquet")])
    for f in checkpoint.files:
        try:
            if f.name.endswith(".parquet"):
                log.open_parquet(f.name, f.size_bytes)
            else:
                for line in f.path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        json.loads(line)
        except Delta2SqlError:
            raise  # the store failed, not the file
        except Exception as exc:  # any failure to open means: not usable
            return f"{f.name} is not readable ({exc.__class__.__name__}: {str(exc)[:120]})"
        try:
            sidecar_files(checkpoint, log, fetch)
        except ObjectGoneError:
            raise  # removed since the listing: no reason to fall back to an older checkpoint
        except DeltaLogError as exc:
            return str(exc)
    return None


def latest_listed_version(location: str | os.PathLike | TableLog) -> int:
    """The newest version the log has a commit or checkpoint for, by listing alone (from the
    `_last_checkpoint` hint where there is one): no checkpoint is opened, so it is cheap on an
    object store. Whether that version can be replayed is `plan_segment`'s question."""
    log = location if isinstance(location, (LocalLog, ObjectStoreLog)) else open_log(location)
    hint = _read_last_checkpoint_hint(log, [])
    listed = log.list(offset=f"{hint:020d}") if hint is not None else []
    versions = [int(o.name[:20]) for o in listed if _COMMIT.match(o.name) or ".checkpoint." in o.name]
    if not versions:
        versions = [int(o.name[:20]) for o in log.list() if _COMMIT.match(o.name) or ".checkpoint." in o.name]
    if not versions:
        raise DeltaLogError(f"{log.log_dir}: no commit or checkpoint files; not a Delta table")
    return max(versions)


@contextmanager
def _no_cycle_collection():
    """Pause the cyclic garbage collector while a listing becomes a segment.

    Listing objects and log files hold no reference cycles, yet each million of them allocated
    triggers full collections over all the others: 5 of the 15 s that planning a
    1,000,000-commit log took. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _TailTooShort(Exception):
    """The listing from the hint or the catalog's version cannot decide the segment alone."""


def plan_segment(
    location: str | os.PathLike | TableLog,
    version: int | None = None,
    full_history: bool = False,
    checkpoint_version: int | None = None,
    after_version: int | None = None,
    catalog_version: int | None = None,
    fetch_checkpoint: bool = True,
) -> LogSegment:
    """Choose what to replay for the table at `location` at `version` (default: latest).

    `checkpoint_version` pins the checkpoint (a resumed run must read what it started with);
    `after_version` asks for the JSON commits after it only (a catch-up of a landed table);
    `catalog_version` is the latest version the catalog of a catalog-managed table ratified: the
    log ends there, and the versions after the last published commit are its staged commits.
    `fetch_checkpoint` false (`assess`) judges an object store's Parquet checkpoint by its footer,
    read in place by ranged GETs; by default it is downloaded whole, as the landing needs it
    (and the download is timed for the estimate).
    Raises DeltaLogError naming the file/version when no correct replay is possible.

    The log is listed from where the replay can start, as delta-kernel-rs does: the catch-up's
    version, the pinned checkpoint, or the `_last_checkpoint` hint. Only when that tail cannot
    decide (the hint is stale, its checkpoint unusable, or the tail empty) is it listed whole.
    """
    log = location if isinstance(location, (LocalLog, ObjectStoreLog)) else open_log(location)
    warnings: list[str] = []
    hint = None
    if after_version is not None:
        tail_from = after_version
    elif checkpoint_version is not None:
        tail_from = checkpoint_version
    else:
        hint = None if full_history else _read_last_checkpoint_hint(log, warnings)
        tail_from = hint if hint is not None and (version is None or version >= hint) else None
    plan = {"version": version, "full_history": full_history, "checkpoint_version": checkpoint_version,
            "after_version": after_version, "catalog_version": catalog_version, "hint": hint,
            "fetch_checkpoint": fetch_checkpoint}
    with _no_cycle_collection():
        if tail_from is not None:
            try:
                return _plan_listed(log, log.list(offset=f"{tail_from:020d}"), list(warnings), tail_from, **plan)
            except _TailTooShort:
                pass
        return _plan_listed(log, log.list(), warnings, None, **plan)


def _plan_listed(log: TableLog, listed: list[LogObject], warnings: list[str], tail_from: int | None, *,
                 version: int | None, full_history: bool, checkpoint_version: int | None, after_version: int | None,
                 catalog_version: int | None, hint: int | None, fetch_checkpoint: bool) -> LogSegment:
    """The segment from `listed`, all of the log or (`tail_from`) its names from that version on."""
    log_dir = log.log_dir
    commits = {int(m[1]): o for o in listed if (m := _COMMIT.match(o.name))}
    crc = {int(m[1]): _log_file(log, o, int(m[1])) for o in listed if (m := _CRC.match(o.name))}
    checkpoints = _group_checkpoints(listed, log)
    for v in sorted(_incomplete_multipart_versions(listed, checkpoints)):
        warnings.append(f"multi-part checkpoint at version {v} is missing parts; ignored")
    if tail_from is not None and (not commits and not checkpoints or catalog_version is not None and not commits):
        raise _TailTooShort

    staged: dict[int, LogFile] = {}
    if catalog_version is not None:
        if commits and max(commits) > catalog_version:  # a published commit is a ratified one
            raise DeltaLogError(f"{log_dir}: version {max(commits)} is published ({max(commits):020d}.json), so the "
                                f"catalog has ratified at least that; --catalog-version {catalog_version} is stale")
        staged = _ratified_staged_commits(log, max(commits, default=-1), catalog_version)
    known = set(commits) | set(checkpoints) | set(staged)
    if not known:
        raise DeltaLogError(f"{log_dir}: no commit or checkpoint files; not a Delta table")
    latest = max(known) if catalog_version is None else catalog_version
    if version is not None:
        if version > latest:
            raise DeltaLogError(f"{log.uri}: version {version} requested but the log ends at version {latest}")
        latest = version

    published = commits

    def stat_commit(v: int) -> LogFile:
        if v in staged:
            return staged[v]
        return _log_file(log, published[v], v)

    commits = {**published, **staged}  # every version with a commit file
    if after_version is not None:
        return _catch_up_segment(log, commits, stat_commit, crc, after_version, latest, catalog_version)
    chosen: Checkpoint | None = None
    if checkpoint_version is not None:
        candidates = [c for c in checkpoints.get(checkpoint_version, []) if _checkpoint_is_readable(c, log, fetch_checkpoint) is None]
        if not candidates:
            if tail_from is not None:
                raise _TailTooShort
            raise DeltaLogError(f"{log_dir}: the checkpoint at version {checkpoint_version} is gone or no longer readable")
        chosen, hint = candidates[0], None
    elif not full_history:
        for v in sorted((v for v in checkpoints if v <= latest), reverse=True):
            for candidate in checkpoints[v]:
                problem = _checkpoint_is_readable(candidate, log, fetch_checkpoint)
                if problem is None:
                    chosen = candidate
                    break
                warnings.append(f"checkpoint at version {v} skipped: {problem}")
            if chosen:
                break
        if tail_from is not None and chosen is None:
            raise _TailTooShort  # the hint's checkpoint is unusable: list it all, find an older one
        if hint is not None and hint <= latest:
            if chosen is None or hint > chosen.version:
                warnings.append(
                    f"_last_checkpoint points at version {hint}, which has no usable checkpoint; "
                    f"used {'version %d' % chosen.version if chosen else 'the JSON history'} found by listing"
                )
            elif hint < chosen.version:
                warnings.append(
                    f"_last_checkpoint is stale (version {hint}); used the newer checkpoint at version {chosen.version}"
                )

    start = chosen.version + 1 if chosen else 0
    if chosen is None and 0 not in commits:
        skipped = [w for w in warnings if w.startswith(("checkpoint at version", "multi-part checkpoint"))]
        if skipped:
            raise DeltaLogError(
                f"{log_dir}: cannot replay: {'; '.join(skipped)}; and the JSON history before it was "
                f"cleaned up ({0:020d}.json is missing)"
            )
        first = min(commits) if commits else None
        raise DeltaLogError(
            f"{log_dir}: version 0 is missing (first commit is {first:020d}.json) and there is no checkpoint; "
            "the history is truncated"
        )
    missing = [v for v in range(start, latest + 1) if v not in commits]
    if missing:
        raise DeltaLogError(
            f"{log_dir}: version {missing[0]} is missing ({missing[0]:020d}.json): commits must be "
            f"contiguous from {start} to {latest}"
        )

    return LogSegment(
        log=log,
        latest_version=latest,
        checkpoint=chosen,
        commits=[stat_commit(v) for v in range(start, latest + 1)],
        checkpoint_commit=stat_commit(chosen.version) if chosen and chosen.version in commits else None,
        crc_files={v: f for v, f in crc.items() if (chosen.version if chosen else 0) <= v <= latest},
        warnings=warnings,
        catalog_version=catalog_version,
    )


def _catch_up_segment(log: TableLog, commits: dict, stat_commit, crc: dict[int, LogFile], after_version: int,
                      latest: int, catalog_version: int | None) -> LogSegment:
    """The JSON commits after `after_version`, which must all still be in the log."""
    log_dir = log.log_dir
    if latest < after_version:
        raise DeltaLogError(f"{log_dir}: the log ends at version {latest}, before the catalog's version {after_version}: "
                            "commits were removed; see `delta2sql drift`")
    missing = [v for v in range(after_version + 1, latest + 1) if v not in commits]
    if missing:
        raise DeltaLogError(
            f"{log_dir}: version {missing[0]} is missing ({missing[0]:020d}.json): a catch-up needs every commit "
            f"after the catalog's version {after_version}; re-land the table with --full-refresh"
        )
    return LogSegment(
        log=log,
        latest_version=latest,
        checkpoint=None,
        commits=[stat_commit(v) for v in range(after_version + 1, latest + 1)],
        checkpoint_commit=None,
        crc_files={v: f for v, f in crc.items() if after_version < v <= latest},
        catalog_version=catalog_version,
    )
