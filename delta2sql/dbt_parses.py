"""dbt's parse of the project, kept between runs and started ahead of the run that needs it.

dbt parses the whole project unless the target directory holds a parse made with the same vars
and profile (`partial_parse.msgpack`; dbt checks the file hashes, the vars and the profile
itself). The CLI's dbt runs name the catalog in their vars, so a parse is kept per catalog and
vars (`seed` / `keep`): a catch-up finds the parse of the migration before it, and a validate the
one of the validation before it (a one-table validation's vars name the table too).

A new catalog has none: its first migrate paid dbt's full parse after the landing (2.8 s, 5.7 s
the first time in a process). `parse_ahead` runs `dbt parse` in a child process while the
batches land, on the core the landing leaves idle, for `seed` to hand to the build: long x1
into DuckDB 0.89x of the time before (it landed with about one core busy), wide x1 unchanged
(1.4 cores busy). A thread would not do: the landing's Python and dbt's parse took turns on
the GIL, and long x1 gained nothing (README, "dbt's parse ahead, in a child process").
`validate` starts one the same way while its references load, for its tests' vars.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

KEPT_PARSES = 8  # catalogs whose parse is kept (about 1 MB each); the oldest go first
# Of log to land or to validate, for a parse ahead to be hidden by the work it runs beside: the
# child takes ~6 s; long x1's 83 MB land in ~9 s, 32 MB in ~3.5 s (validating them takes longer).
PARSE_AHEAD_MIN_BYTES = 32 << 20
PARSE_AHEAD_SECONDS = 300  # a child parse still running this long after the run asked for it is stopped

_AHEAD: dict[Path, tuple[subprocess.Popen, Path]] = {}  # parses under way, by the cache file they are for
_AHEAD_LOCK = threading.Lock()  # tables of a fleet land, and start parses, on threads of their own


def cache_file(target: str, vars_text: str) -> Path:
    """Where the parse for this target and these vars (the catalog's settings among them) is kept."""
    digest = hashlib.sha256(vars_text.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"delta2sql-partial-parse-{os.getuid()}-{target}-{digest}.msgpack"


def parse_ahead(options: list[str], target: str, vars_text: str) -> None:
    """Start `dbt parse` with `options` (the run's, but its own target directory) in a child
    process, unless a parse for these vars is kept already or under way. The child inherits the
    environment (the PG* variables); it opens no catalog and writes nothing but its target
    directory. A child that cannot start (a full temporary directory, no more processes) is
    none: the build parses itself, as without it."""
    cache = cache_file(target, vars_text)
    with _AHEAD_LOCK:
        if cache in _AHEAD or cache.exists():
            return
        target_path = None
        try:
            target_path = Path(tempfile.mkdtemp(prefix="delta2sql-dbt-parse-"))
            process = subprocess.Popen(
                [sys.executable, "-m", "dbt.cli.main", "parse", *options, "--target-path", str(target_path),
                 "--log-path", str(target_path / "logs")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            if target_path is not None:
                shutil.rmtree(target_path, ignore_errors=True)
            return
        _AHEAD[cache] = (process, target_path)


def seed(target_path: Path, target: str, vars_text: str) -> None:
    """Put the kept parse for these vars in the run's target directory, waiting for the one
    started ahead if it is still under way. A parse ahead that failed or hangs, or a kept one
    that another process let go of meanwhile, leaves none: the run then parses, and reports,
    itself."""
    cache = cache_file(target, vars_text)
    with _AHEAD_LOCK:
        ahead = _AHEAD.pop(cache, None)
    if ahead is not None:
        process, ahead_path = ahead
        try:
            if process.wait(PARSE_AHEAD_SECONDS) == 0:
                keep(ahead_path, target, vars_text)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            shutil.rmtree(ahead_path, ignore_errors=True)
    try:
        shutil.copyfile(cache, target_path / "partial_parse.msgpack")
    except FileNotFoundError:
        pass


def keep(target_path: Path, target: str, vars_text: str) -> None:
    """Keep the parse a run left in `target_path` for the next run with these vars, and let go
    of all but the KEPT_PARSES newest. Best effort: a parse that cannot be kept (a full
    temporary directory) costs the next run a parse, and fails nothing."""
    parsed = target_path / "partial_parse.msgpack"
    cache = cache_file(target, vars_text)
    temporary = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        shutil.copyfile(parsed, temporary)
        os.replace(temporary, cache)  # atomic: concurrent runs never read half a file
        kept = sorted(cache.parent.glob(f"delta2sql-partial-parse-{os.getuid()}-*.msgpack"),
                      key=_modified, reverse=True)
        for old in kept[KEPT_PARSES:]:
            old.unlink(missing_ok=True)
    except OSError:
        temporary.unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # let go of by a concurrent run meanwhile
        return 0.0


@atexit.register
def _stop_parses_ahead() -> None:
    """A parse nobody waited for (the landing or the validation failed): stopped, its directory removed."""
    with _AHEAD_LOCK:
        for process, target_path in _AHEAD.values():
            process.kill()
            process.wait()
            shutil.rmtree(target_path, ignore_errors=True)
        _AHEAD.clear()
