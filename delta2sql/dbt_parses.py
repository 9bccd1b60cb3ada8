"""dbt's parse of the project, kept between runs.

dbt parses the whole project unless the target directory holds a parse made with the same vars
and profile (`partial_parse.msgpack`; dbt checks the file hashes, the vars and the profile
itself). The CLI's dbt runs name the catalog in their vars, so a parse is kept per catalog and
vars (`seed` / `keep`): a catch-up finds the parse of the migration before it, and a validate the
one of the validation before it (a one-table validation's vars name the table too). A child
made ready ahead of a run (dbt_ahead) starts from it as well, and keeps its own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

KEPT_PARSES = 8  # catalogs whose parse is kept (about 1 MB each); the oldest go first


def cache_file(target: str, vars_text: str) -> Path:
    """Where the parse for this target and these vars (the catalog's settings among them) is kept."""
    digest = hashlib.sha256(vars_text.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"delta2sql-partial-parse-{os.getuid()}-{target}-{digest}.msgpack"


def seed(target_path: Path, target: str, vars_text: str) -> None:
    """Put the kept parse for these vars in a run's target directory, if one is kept (another
    process may have let go of it meanwhile: the run then parses itself)."""
    try:
        shutil.copyfile(cache_file(target, vars_text), target_path / "partial_parse.msgpack")
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
