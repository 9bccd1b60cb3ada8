"""`delta2sql assess` against `migrate`, the oracle of what is refused: every table assess calls
blocked, migrate refuses for the same reason; a table it calls ready is migrated, or refused only
for a reason that needs a full read of the log (README, "Assess a lake"). And assess reads no
checkpoint rows: the bytes the process reads stay at the footer and the protocol and metaData
columns."""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import corpus_tables, run_fleet
from fixtures.handwritten_logs import (
    BAD_INPUT_FIXTURES,
    _add,
    _field,
    _metadata,
    _protocol,
    build_v2_checkpoint_sidecars,
    write_commit,
)

from delta2sql.assess import assess_table, discover_tables
from delta2sql.cli import main
from delta2sql.log_store import session
from delta2sql.migrate import TableSpec

# Bad input that only a full read shows, and the words migrate refuses it with: assess calls these
# tables ready (README, "Assess a lake", lists the kinds).
NEEDS_FULL_READ = {"truncated_json_line": "00000000000000000002.json: line"}


def assess(path: Path, name: str | None = None):
    with session():
        return assess_table(TableSpec(path, name or path.name))


def migrate_error(path: Path, catalog: Path) -> str | None:
    result = CliRunner().invoke(main, ["migrate", str(path), "--catalog", str(catalog), "--json"])
    errors = [e["error"] for e in map(json.loads, result.output.splitlines()) if e.get("error")]
    return errors[0] if result.exit_code else None


@pytest.mark.corpus
def test_corpus_tables_blocked_by_assess_are_refused_by_migrate_for_the_same_reason(corpus_root, fleet_dir):
    run = run_fleet("corpus", "duckdb", corpus_tables(corpus_root), fleet_dir)
    assessments = {name: assess(path, name) for name, path in run.tables.items()}
    blocked = {name: a for name, a in assessments.items() if a.status == "blocked"}
    assert blocked, "the corpus has a table with an unknown reader feature"
    for name, a in blocked.items():
        assert run.outcomes[name].status == "failed", f"assess blocked {name} ({a.blockers}) but migrate migrated it"
        assert a.blockers[0] in run.outcomes[name].error
    refused_when_ready = {name: run.outcomes[name].error for name, a in assessments.items()
                          if a.status == "ready" and run.outcomes[name].status == "failed"}
    assert refused_when_ready == {}  # the README counts none on the corpus


def test_fixture_tables_agree_with_migrate(fixture_tables, fleet_dir):
    """The valid and survivable fixtures (migrated by test_fixture_tables' fleet): all ready,
    warnings included; the survivable ones warn about what migrate works around."""
    run = run_fleet("fixtures", "duckdb", fixture_tables, fleet_dir)
    for name, path in run.tables.items():
        a = assess(path, name)
        assert a.status == "ready", f"{name}: {a.blockers}"
        assert run.outcomes[name].status == "migrated"
        assert a.latest_version == run.outcomes[name].latest_version
        assert a.replay_start_version == run.outcomes[name].replay_start_version


@pytest.mark.parametrize("name", sorted(BAD_INPUT_FIXTURES))
def test_bad_input_blocked_by_assess_is_refused_by_migrate_for_the_same_reason(tmp_path, name):
    build, _ = BAD_INPUT_FIXTURES[name]
    table = tmp_path / name
    build(table)
    refusal = migrate_error(table, tmp_path / "catalog.duckdb")
    assert refusal, f"migrate accepted the bad fixture {name}"
    if name == "no_delta_log":  # assess does not take a folder without a log for a table
        result = CliRunner().invoke(main, ["assess", str(table)])
        assert result.exit_code == 1 and "not a Delta table (no _delta_log)" in result.output
        return
    a = assess(table)
    if name in NEEDS_FULL_READ:
        assert a.status == "ready" and NEEDS_FULL_READ[name] in refusal
        return
    assert a.status == "blocked", f"{name}: assess saw nothing, migrate refused: {refusal}"
    assert a.blockers[0] in refusal


def write_table(root: Path, protocol: dict, versions: int = 1) -> Path:
    write_commit(root, 0, [protocol, _metadata("assess", [_field("id", "long")]), _add("part-0.parquet", 0)])
    for version in range(1, versions):
        write_commit(root, version, [_add(f"part-{version}.parquet", version)])
    return root


def test_a_refused_reader_feature_blocks_and_a_catalog_managed_table_needs_its_catalog_version(tmp_path):
    refused = assess(write_table(tmp_path / "refused", _protocol(3, 7, ["someFutureFeature"], ["someFutureFeature"])))
    assert refused.status == "blocked"
    assert refused.blockers == ["unsupported: reader feature someFutureFeature (protocol of version 0)"]
    assert "unsupported: reader feature someFutureFeature" in migrate_error(tmp_path / "refused", tmp_path / "c1.duckdb")

    managed = write_table(tmp_path / "managed", _protocol(3, 7, ["catalogManaged"], ["catalogManaged", "inCommitTimestamp"]))
    a = assess(managed)
    assert a.status == "blocked" and "--catalog-version" in a.blockers[0]
    assert a.blockers[0] in migrate_error(managed, tmp_path / "c2.duckdb")
    with session():
        assert assess_table(TableSpec(managed, "managed", catalog_version=0)).status == "ready"


def test_protocol_changes_beyond_the_commits_it_reads_are_named_as_unread(tmp_path):
    """With no checkpoint or .crc, assess reads the newest 100 commits and version 0: a protocol
    change between them is migrate's to see, and assess says so."""
    a = assess(write_table(tmp_path / "long", _protocol(1, 2), versions=150))
    assert a.status == "ready" and a.protocol_source == "JSON commit 0"
    assert any("49 JSON commits" in w and "not read" in w for w in a.warnings), a.warnings


def read_bytes_of_this_process() -> int:
    """Bytes this process has read through read(2) and friends (Linux /proc/self/io `rchar`)."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:")).split()[1])


def test_assess_reads_no_checkpoint_rows(tmp_path):
    """A checkpoint of 60,000 adds written by delta-rs: what assess reads (footers, the protocol and
    metaData columns) is a fraction of the `add` column alone, which any read of its rows needs
    whole; the live files come from _last_checkpoint."""
    root = tmp_path / "big"
    adds = [_add(f"part-{i:05d}-{'x' * 60}.parquet", 0) for i in range(60_000)]
    write_commit(root, 0, [_protocol(1, 2), _metadata("big", [_field("id", "long")]), *adds])
    deltalake.DeltaTable(str(root)).create_checkpoint()
    (root / "_delta_log" / f"{0:020d}.json").unlink()  # what a log cleanup leaves: the checkpoint alone
    footer = pq.read_metadata(root / "_delta_log" / f"{0:020d}.checkpoint.parquet")
    add_column_bytes = sum(group.column(i).total_compressed_size for group in map(footer.row_group, range(footer.num_row_groups))
                           for i in range(group.num_columns) if group.column(i).path_in_schema.startswith("add."))
    assess(root)  # imports and first-use costs outside the measurement
    before = read_bytes_of_this_process()
    a = assess(root)
    read = read_bytes_of_this_process() - before
    assert (a.checkpoint_actions, a.live_files, a.protocol_source) == (60_002, 60_000, "checkpoint at version 0")
    assert add_column_bytes > 2_000_000
    assert read < add_column_bytes / 4, f"read {read:,} bytes; the add column alone is {add_column_bytes:,}"


def test_recursive_discovery_finds_tables_and_not_their_insides(tmp_path):
    write_table(tmp_path / "lake" / "sales" / "orders", _protocol(1, 2))
    build_v2_checkpoint_sidecars(tmp_path / "lake" / "sales" / "items")
    write_table(tmp_path / "lake" / "hr" / "people", _protocol(1, 2))
    (tmp_path / "lake" / "hr" / "people" / "year=2024").mkdir()
    (tmp_path / "lake" / "empty").mkdir()
    lake = tmp_path / "lake"
    assert discover_tables(str(lake), recursive=True) == [
        str(lake / "hr" / "people"), str(lake / "sales" / "items"), str(lake / "sales" / "orders")]
    result = CliRunner().invoke(main, ["assess", str(lake), "--recursive", "--json"])
    events = [json.loads(line) for line in result.output.splitlines()]
    finished = next(e for e in events if e["event"] == "assessment_finished")
    assert result.exit_code == 0 and (finished["ready"], finished["blocked"]) == (3, 0)
    assert finished["migration_order"][0] == "items"  # the V2 checkpoint's table holds the most log bytes
    markdown = CliRunner().invoke(main, ["assess", str(lake), "--recursive", "--format", "md"]).output
    assert markdown.startswith("# Delta table assessment") and "| people | ready |" in markdown
