"""`pytest -m postgres` (or duckdb, sqlite) runs one engine's tests alone: conftest marks every
test by the engine of its parametrization."""

from __future__ import annotations

import subprocess
import sys

from conftest import ENGINES, REPO


def collected(*options: str) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options,
                          "tests/python/test_catch_up.py", "tests/python/test_resume.py"],
                         cwd=REPO, capture_output=True, text=True)
    return [line for line in run.stdout.splitlines() if "::" in line]


def test_an_engine_marker_selects_exactly_that_engines_tests():
    everything = collected()
    for engine in ENGINES:
        chosen = collected("-m", engine)
        expected = [t for t in everything if engine in t.partition("[")[2].rstrip("]").split("-")]
        assert chosen and chosen == expected
