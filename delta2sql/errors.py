"""Exception types users see.

Every message names the table, the log file or version at fault and, where it helps, what to
do about it: a migration of a production table fails loudly and precisely, never half-way quietly.
"""


class Delta2SqlError(Exception):
    """Base class: a handled failure (exit code 1)."""


class DeltaLogError(Delta2SqlError):
    """The `_delta_log` cannot be replayed: missing, truncated or corrupt files, version gaps."""


class ObjectGoneError(DeltaLogError):
    """A log file that was listed is gone when read: removed meanwhile (a cleanup, a vacuum).
    Unlike a missing or unreadable checkpoint, it is no reason to fall back to an older one."""


class UnsupportedTableError(Delta2SqlError):
    """The table uses a feature this tool (or the reference reader) cannot handle."""


class CatalogError(Delta2SqlError):
    """The catalog database is unreachable or refused an operation."""


class CatalogBusy(CatalogError):
    """Another process holds the catalog file (DuckDB lets one process open it at a time)."""


class ValidationFailed(Delta2SqlError):
    """At least one validation check failed."""
