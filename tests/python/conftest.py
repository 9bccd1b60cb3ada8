"""Shared pytest fixtures: the corpus location, catalogs in temporary directories, and a
reporter that records warnings instead of printing them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from delta2sql.catalog import Catalog
from delta2sql.progress import Reporter

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "delta-corpus" / "delta-rs"
IN_CI = os.environ.get("CI") == "true"


class RecordingReporter(Reporter):
    """Keeps events so tests can assert on warnings and failures."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, kind: str, **fields) -> None:
        self.events.append((kind, fields))

    def messages(self, kind: str) -> list[str]:
        return [f.get("message", "") for k, f in self.events if k == kind]


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    return Catalog(target="duckdb", path=tmp_path / "catalog.duckdb")


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """../shared/delta-corpus: required in CI, skipped (with a reason) on a laptop without it."""
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the Delta corpus is required when CI=true, but {CORPUS} is missing")
        pytest.skip(f"{CORPUS} not present")
    return CORPUS


def corpus_tables(root: Path) -> dict[str, Path]:
    """Every Delta table under the corpus root, named by its relative path."""
    return {str(d.parent.relative_to(root)): d.parent for d in sorted(root.rglob("_delta_log"))}
