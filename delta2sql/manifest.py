"""`migrate --manifest tables.yml`: the fleet of tables to migrate, one entry per table.

    tables:
      - path: /lake/sales/orders      # required; relative paths are relative to the manifest
        name: orders                  # optional: catalog name (default: the directory name)
      - path: s3://lake/sales/items   # or an object store URI (log_store.py)
        storage_options:              # optional: delta-rs's storage_options keys, for this table
          AWS_REGION: eu-west-1
        version: 1200                 # optional: replay up to this version
        full_history: false           # optional: ignore checkpoints
        catalog_version: 1250         # catalog-managed tables: the latest version the catalog ratified
"""

from __future__ import annotations

from pathlib import Path

import yaml

from delta2sql.errors import Delta2SqlError
from delta2sql.log_store import default_table_name, is_object_store_uri
from delta2sql.migrate import TableSpec

_KEYS = {"path", "name", "version", "full_history", "catalog_version", "storage_options"}


def read_manifest(path: Path) -> list[TableSpec]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise Delta2SqlError(f"{path}: not valid YAML: {exc}") from exc
    entries = document.get("tables") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise Delta2SqlError(f"{path}: expected a non-empty `tables:` list")
    specs = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "path" not in entry:
            raise Delta2SqlError(f"{path}: table {index}: needs at least `path`")
        unknown = set(entry) - _KEYS
        if unknown:
            raise Delta2SqlError(f"{path}: table {index}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("version", "catalog_version"):
            if key in entry and not (isinstance(entry[key], int) and entry[key] >= 0):
                raise Delta2SqlError(f"{path}: table {index}: `{key}` must be a version number, not {entry[key]!r}")
        options = entry.get("storage_options") or {}
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise Delta2SqlError(f"{path}: table {index}: `storage_options` must be a map of KEY: value")
        table_path = str(entry["path"])
        if not is_object_store_uri(table_path) and not Path(table_path).is_absolute():
            table_path = str(path.parent / table_path)
        try:
            specs.append(TableSpec(table_path, str(entry.get("name") or default_table_name(table_path)),
                                   entry.get("version"), bool(entry.get("full_history", False)),
                                   entry.get("catalog_version"), {k: str(v) for k, v in options.items()}))
        except Delta2SqlError as exc:  # the name policy (delta2sql/names.py), for this entry
            raise Delta2SqlError(f"{path}: table {index}: {exc}") from exc
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Delta2SqlError(f"{path}: table names must be unique; repeated: {', '.join(duplicates)}")
    return specs
