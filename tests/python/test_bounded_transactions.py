"""--commit-every: bounded transactions never let a partly landed table count as migrated, and
a rerun ends with the same catalog as one transaction would have."""

from __future__ import annotations

import uuid

from conftest import RecordingReporter, make_catalog
from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables
from fixtures.deltalake_tables import DELTALAKE_FIXTURES


def test_failed_bounded_landing_stays_unmigrated_and_rerun_matches(tmp_path, catalog):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    last = sorted((table / "_delta_log").glob("*.json"))[-1]
    intact = last.read_bytes()
    last.write_bytes(intact[:-20])  # a torn write in the last commit

    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), batch_size=1, commit_every=1)
    assert outcome.status == "failed" and last.name in outcome.error
    with catalog.connect() as con:
        assert con.execute("select status from delta_log_tables where table_name = 't'").fetchall() == [("landing",)]
        assert con.execute("select count(*) from delta_log_actions where table_name = 't'").fetchone()[0] > 0

    last.write_bytes(intact)
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), batch_size=1, commit_every=1)
    assert outcome.status == "migrated", outcome.error
    clean = make_catalog(catalog.target, tmp_path, "clean" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t")], clean, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with catalog.connect() as bounded, clean.connect() as single:
        assert table_fingerprints(bounded, "t") == table_fingerprints(single, "t")
