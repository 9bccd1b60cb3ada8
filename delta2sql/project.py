"""Where the dbt project is: inside an installed wheel, or beside the package in a checkout.

`setup.py` copies the project into `delta2sql/dbt_project/` when it builds a wheel; a checkout
and an editable install use the repository's top level. Looking for `dbt_project.yml` (rather than
trusting a relative path) makes a broken install fail with a message instead of a dbt error.
"""

from __future__ import annotations

import functools
from pathlib import Path

from delta2sql.errors import Delta2SqlError

PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = PACKAGE_DIR / "sql"  # the CLI's own SQL, shipped as package data


@functools.cache
def project_dir() -> Path:
    """The directory holding `dbt_project.yml`, `models/` and `profiles/`."""
    for candidate in (PACKAGE_DIR / "dbt_project", PACKAGE_DIR.parent):
        if (candidate / "dbt_project.yml").is_file() and (candidate / "profiles" / "profiles.yml").is_file():
            return candidate
    raise Delta2SqlError(f"the dbt project is missing from this install of delta2sql ({PACKAGE_DIR}); reinstall it")


def profiles_dir() -> Path:
    return project_dir() / "profiles"
