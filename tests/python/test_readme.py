"""The README pastes: its commands run as written, top to bottom, in a fresh copy of the repository.

The first block's first command (`scripts/demo.sh`) sets up the copy's own `.venv` from the
package index, as on a new machine; its second (`scripts/test.sh`) is this suite, so it is not
run from inside it. Every later ```bash block runs in one shell, in order, so that `source` and
`cd` carry over as when a person pastes them. A block preceded by `<!-- readme-test: skip ... -->`
(the benchmarks) says why it is not run. The one edit: the PostgreSQL schema of the README
(`lake`) becomes this run's own, so that runs do not collide.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import psycopg
import pytest
from conftest import REPO, RUN_ID, postgres_settings, require_postgres
from test_install import IGNORED

BLOCK = re.compile(r"(<!-- readme-test: skip[^>]*-->\n)?```bash\n(.*?)```", re.S)


def readme_blocks() -> list[str]:
    return [body for skip, body in BLOCK.findall((REPO / "README.md").read_text()) if not skip]


def test_readme_blocks_are_found():
    blocks = readme_blocks()
    assert blocks[0].splitlines()[0].startswith("scripts/demo.sh")
    assert any("delta2sql migrate events --target postgres" in b for b in blocks)


@pytest.mark.slow
def test_readme_pastes_top_to_bottom(tmp_path):
    require_postgres()
    clone = tmp_path / "delta2sql"
    shutil.copytree(REPO, clone, ignore=IGNORED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "DELTA2SQL_", "DBT_"))}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # not this suite's venv: the README's setup must make its own

    first = readme_blocks()[0].splitlines()[0].split("#")[0].strip()
    demo = subprocess.run(["bash", "-c", first], cwd=clone, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "passed, 0 failed" in demo.stdout

    schema = f"d2s_{RUN_ID}_readme"
    script = "set -euo pipefail\n" + "\n".join(readme_blocks()[1:]).replace("DELTA2SQL_PG_SCHEMA=lake",
                                                                           f"DELTA2SQL_PG_SCHEMA={schema}")
    try:
        session = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True,
                                 timeout=900)
    finally:
        s = postgres_settings()
        with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
                             password=s.get("password") or None, autocommit=True) as con:
            con.execute(f'drop schema if exists "{schema}" cascade')
    output = session.stdout + session.stderr
    assert session.returncode == 0, output
    for expected in ("events: migrated versions 20..29", "passed, 0 failed", "up to date",
                     "PASS=", "the second writer of that version is refused", "back to file-based",
                     "events_eu: migrated versions 20..25", "table            s3://lake/sales/events",
                     "events: no drift"):
        assert expected in output, f"{expected!r} not in:\n{output}"
    assert "Database Error" not in output and "unexpected error" not in output
