"""List a `_delta_log` and choose the log segment to replay.

The segment is the newest usable checkpoint at or below the wanted version plus the JSON
commits after it (or every JSON commit from version 0 with `full_history`). This follows the
listing rules of the Delta protocol and delta-kernel-rs: `_last_checkpoint` is only a hint,
incomplete multi-part checkpoints are ignored, several complete checkpoints of one version are
ranked V2 (UUID-named) > multi-part > classic, and a gap in the commits to replay is an error.

Listing is file-system work, not replay, so it lives in Python; the replay itself is SQL.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from delta2sql.errors import DeltaLogError

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_MULTIPART_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_V2_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.([0-9a-fA-F-]{36})\.(json|parquet)$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_COMPACTION = re.compile(r"^(\d{20})\.(\d{20})\.compacted\.json$")
_STAGED_COMMIT = re.compile(r"^(\d{20})\.([0-9a-fA-F-]{36})\.json$")  # in _delta_log/_staged_commits/

# When one version has several complete checkpoints, prefer the richest (delta-kernel-rs order).
_CHECKPOINT_RANK = {"v2": 0, "multipart": 1, "classic": 2}


@dataclass(frozen=True)
class LogFile:
    """One file of `_delta_log` (or of `_delta_log/_sidecars`)."""

    path: Path
    name: str  # relative to _delta_log, e.g. "00000000000000000003.json" or "_sidecars/x.parquet"
    version: int | None
    size_bytes: int
    modification_time_ms: int


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: every file of it, in part order."""

    version: int
    kind: str  # "classic" | "multipart" | "v2"
    files: tuple[LogFile, ...]


@dataclass
class LogSegment:
    """What a replay reads: an optional checkpoint, then contiguous JSON commits."""

    table_root: Path
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
    def log_dir(self) -> Path:
        return self.table_root / "_delta_log"


def _stat(path: Path, name: str, version: int | None, entry: os.DirEntry | None = None) -> LogFile:
    st = entry.stat() if entry is not None else path.stat()  # a DirEntry caches its stat
    return LogFile(path, name, version, st.st_size, st.st_mtime_ns // 1_000_000)


def _list_log_dir(log_dir: Path) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(log_dir) if e.is_file() and not e.name.startswith(".")]
    except FileNotFoundError:
        raise DeltaLogError(f"{log_dir.parent}: not a Delta table (no _delta_log directory)") from None
    except NotADirectoryError:
        raise DeltaLogError(f"{log_dir}: _delta_log is not a directory") from None


def _read_last_checkpoint_hint(log_dir: Path, warnings: list[str]) -> int | None:
    hint = log_dir / "_last_checkpoint"
    if not hint.exists():
        return None
    try:
        return int(json.loads(hint.read_text(encoding="utf-8"))["version"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        warnings.append(f"_last_checkpoint is unreadable ({exc.__class__.__name__}); listed _delta_log instead")
        return None


def _group_checkpoints(entries: list[os.DirEntry], log_dir: Path) -> dict[int, list[Checkpoint]]:
    """Group checkpoint files per version; multi-part ones only when every part is present."""
    by_version: dict[int, list[Checkpoint]] = {}
    multipart: dict[tuple[int, int], dict[int, LogFile]] = {}
    for entry in entries:
        if ".checkpoint." not in entry.name or entry.stat().st_size == 0:
            continue  # zero-byte checkpoints are skipped by kernel listing
        path = log_dir / entry.name
        if m := _CLASSIC_CHECKPOINT.match(entry.name):
            v = int(m[1])
            by_version.setdefault(v, []).append(Checkpoint(v, "classic", (_stat(path, entry.name, v),)))
        elif m := _V2_CHECKPOINT.match(entry.name):
            v = int(m[1])
            by_version.setdefault(v, []).append(Checkpoint(v, "v2", (_stat(path, entry.name, v),)))
        elif m := _MULTIPART_CHECKPOINT.match(entry.name):
            v, part, parts = int(m[1]), int(m[2]), int(m[3])
            multipart.setdefault((v, parts), {})[part] = _stat(path, entry.name, v)
    for (v, parts), found in multipart.items():
        if sorted(found) == list(range(1, parts + 1)):
            files = tuple(found[i] for i in range(1, parts + 1))
            by_version.setdefault(v, []).append(Checkpoint(v, "multipart", files))
    for candidates in by_version.values():
        candidates.sort(key=lambda c: _CHECKPOINT_RANK[c.kind])
    return by_version


def _incomplete_multipart_versions(entries: list[os.DirEntry], complete: dict[int, list[Checkpoint]]) -> set[int]:
    seen = {int(m[1]) for e in entries if (m := _MULTIPART_CHECKPOINT.match(e.name))}
    return {v for v in seen if not any(c.kind == "multipart" for c in complete.get(v, []))}


def sidecar_files(checkpoint: Checkpoint, log_dir: Path) -> list[LogFile]:
    """The `_sidecars/` files a V2-spec checkpoint references; an error names any that is missing.

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
        paths = []
        for line in top.path.read_text(encoding="utf-8").splitlines():
            if line.strip() and "sidecar" in (action := json.loads(line)):
                paths.append(action["sidecar"]["path"])
    else:
        table = pq.read_table(top.path, columns=["sidecar"]) if "sidecar" in pq.read_schema(top.path).names else None
        paths = [] if table is None else [r["path"] for r in table.column("sidecar").to_pylist() if r]
    files = []
    for rel in paths:
        path = log_dir / "_sidecars" / rel if "/" not in rel else log_dir / rel
        if not path.exists():
            raise DeltaLogError(f"{top.path}: references sidecar {rel}, which does not exist")
        files.append(_stat(path, f"_sidecars/{path.name}", checkpoint.version))
    return files


def _ratified_staged_commits(log_dir: Path, last_published: int, catalog_version: int) -> dict[int, LogFile]:
    """The staged commits of the versions after the last published one up to the catalog's
    ratified version (PROTOCOL.md, "Catalog-managed tables"): exactly one per version, else the
    catalog alone knows which proposal it ratified. A published `<v>.json` always wins: its
    existence proves v ratified, and a staged file of a published version may be a losing one."""
    staged_dir = log_dir / "_staged_commits"
    found: dict[int, list[os.DirEntry]] = {}
    if staged_dir.is_dir():
        for entry in os.scandir(staged_dir):
            if (m := _STAGED_COMMIT.match(entry.name)) and last_published < int(m[1]) <= catalog_version:
                found.setdefault(int(m[1]), []).append(entry)
    staged = {}
    for version in range(last_published + 1, catalog_version + 1):
        entries = sorted(found.get(version, []), key=lambda e: e.name)
        if not entries:
            raise DeltaLogError(f"{log_dir}: the catalog ratified version {catalog_version}, but version {version} is "
                                f"neither published ({version:020d}.json) nor staged in _staged_commits/")
        if len(entries) > 1:
            raise DeltaLogError(f"{staged_dir}: {len(entries)} staged commits for version {version} "
                                f"({', '.join(e.name for e in entries)}); only the catalog knows which one it ratified")
        staged[version] = _stat(staged_dir / entries[0].name, f"_staged_commits/{entries[0].name}", version, entries[0])
    return staged


def _checkpoint_is_readable(checkpoint: Checkpoint) -> str | None:
    """Return why a checkpoint cannot be used, or None when its files open."""
    for f in checkpoint.files:
        try:
            if f.name.endswith(".parquet"):
                pq.read_metadata(f.path)
            else:
                for line in f.path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        json.loads(line)
        except Exception as exc:  # any failure to open means: not usable
            return f"{f.name} is not readable ({exc.__class__.__name__}: {str(exc)[:120]})"
        try:
            sidecar_files(checkpoint, f.path.parent)
        except DeltaLogError as exc:
            return str(exc)
    return None


def plan_segment(
    table_root: str | os.PathLike,
    version: int | None = None,
    full_history: bool = False,
    checkpoint_version: int | None = None,
    after_version: int | None = None,
    catalog_version: int | None = None,
) -> LogSegment:
    """Choose what to replay for `table_root` at `version` (default: latest).

    `checkpoint_version` pins the checkpoint (a resumed run must read what it started with);
    `after_version` asks for the JSON commits after it only (a catch-up of a landed table);
    `catalog_version` is the latest version the catalog of a catalog-managed table ratified: the
    log ends there, and the versions after the last published commit are its staged commits.
    Raises DeltaLogError naming the file/version when no correct replay is possible.
    """
    root = Path(table_root)
    log_dir = root / "_delta_log"
    entries = _list_log_dir(log_dir)
    warnings: list[str] = []

    commits = {int(m[1]): e for e in entries if (m := _COMMIT.match(e.name))}
    crc = {int(m[1]): _stat(log_dir / e.name, e.name, int(m[1])) for e in entries if (m := _CRC.match(e.name))}
    checkpoints = _group_checkpoints(entries, log_dir)
    for v in sorted(_incomplete_multipart_versions(entries, checkpoints)):
        warnings.append(f"multi-part checkpoint at version {v} is missing parts; ignored")

    staged: dict[int, LogFile] = {}
    if catalog_version is not None:
        if commits and max(commits) > catalog_version:  # a published commit is a ratified one
            raise DeltaLogError(f"{log_dir}: version {max(commits)} is published ({max(commits):020d}.json), so the "
                                f"catalog has ratified at least that; --catalog-version {catalog_version} is stale")
        staged = _ratified_staged_commits(log_dir, max(commits, default=-1), catalog_version)
    known = set(commits) | set(checkpoints) | set(staged)
    if not known:
        raise DeltaLogError(f"{log_dir}: no commit or checkpoint files; not a Delta table")
    latest = max(known) if catalog_version is None else catalog_version
    if version is not None:
        if version > latest:
            raise DeltaLogError(f"{root}: version {version} requested but the log ends at version {latest}")
        latest = version

    published = commits

    def stat_commit(v: int) -> LogFile:
        if v in staged:
            return staged[v]
        return _stat(log_dir / published[v].name, published[v].name, v, published[v])

    commits = {**published, **staged}  # every version with a commit file
    if after_version is not None:
        return _catch_up_segment(root, commits, stat_commit, crc, after_version, latest, catalog_version)
    hint = _read_last_checkpoint_hint(log_dir, warnings)
    chosen: Checkpoint | None = None
    if checkpoint_version is not None:
        candidates = [c for c in checkpoints.get(checkpoint_version, []) if _checkpoint_is_readable(c) is None]
        if not candidates:
            raise DeltaLogError(f"{log_dir}: the checkpoint at version {checkpoint_version} is gone or no longer readable")
        chosen, hint = candidates[0], None
    elif not full_history:
        for v in sorted((v for v in checkpoints if v <= latest), reverse=True):
            for candidate in checkpoints[v]:
                problem = _checkpoint_is_readable(candidate)
                if problem is None:
                    chosen = candidate
                    break
                warnings.append(f"checkpoint at version {v} skipped: {problem}")
            if chosen:
                break
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
        table_root=root,
        latest_version=latest,
        checkpoint=chosen,
        commits=[stat_commit(v) for v in range(start, latest + 1)],
        checkpoint_commit=stat_commit(chosen.version) if chosen and chosen.version in commits else None,
        crc_files={v: f for v, f in crc.items() if (chosen.version if chosen else 0) <= v <= latest},
        warnings=warnings,
        catalog_version=catalog_version,
    )


def _catch_up_segment(root: Path, commits: dict, stat_commit, crc: dict[int, LogFile], after_version: int,
                      latest: int, catalog_version: int | None) -> LogSegment:
    """The JSON commits after `after_version`, which must all still be in the log."""
    log_dir = root / "_delta_log"
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
        table_root=root,
        latest_version=latest,
        checkpoint=None,
        commits=[stat_commit(v) for v in range(after_version + 1, latest + 1)],
        checkpoint_commit=None,
        crc_files={v: f for v, f in crc.items() if after_version < v <= latest},
        catalog_version=catalog_version,
    )
