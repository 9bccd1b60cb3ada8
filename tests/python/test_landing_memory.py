"""A batch that runs out of memory beside the other reader: into PostgreSQL and SQLite two
in-memory readers parse ahead of each other with half the landing cap each, and a checkpoint
written by delta-rs (row groups of up to 1M rows) can need more than half in one block (250 MB
on the benchmark's wide_delta_rs table). Such a batch is parsed again at its turn, alone, with
the whole cap, after what the failed parse left is dropped."""

from __future__ import annotations

import deltalake
import duckdb
import pytest
from conftest import ENGINES, RecordingReporter, make_catalog
from fixtures.handwritten_logs import _add, _field, _metadata, _protocol, write_commit

from delta2sql import extract
from delta2sql.catalog import Catalog
from delta2sql.errors import DeltaLogError
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.runs import RunOptions

CAP = 512 << 20


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "duckdb"])  # DuckDB parses into the catalog itself
def test_a_batch_out_of_memory_beside_the_other_reader_is_parsed_again_alone_with_the_whole_cap(engine, tmp_path,
                                                                                                  monkeypatch):
    table = tmp_path / "t"
    write_commit(table, 0, [_protocol(1, 2), _metadata("t", [_field("id", "long")]),
                            *(_add(f"part-{i:05d}.parquet", 0) for i in range(3_000))])
    deltalake.DeltaTable(str(table)).create_checkpoint()
    write_commit(table, 1, [_add("part-late.parquet", 1)])
    monkeypatch.setattr(Catalog, "landing_memory_limit", lambda self, held: (CAP, False))
    real, caps = extract.land_batch, []

    def land_batch(con, segment, table_name, batch, *args):
        """Every checkpoint slice's first parse lands its rows, then runs out of memory."""
        landed = real(con, segment, table_name, batch, *args)
        caps.append((batch.number, con.execute("select current_setting('memory_limit')").fetchall()[0][0]))
        if batch.source == "checkpoint" and [n for n, _ in caps].count(batch.number) == 1:
            raise DeltaLogError(f"cannot read {batch.label}: out of memory") from duckdb.OutOfMemoryException("fake")
        return landed

    monkeypatch.setattr("delta2sql.runs.land_batch", land_batch)
    catalog = make_catalog(engine, tmp_path, "c")
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(),
                               RunOptions(checkpoint_batch_rows=1_000))  # 4 slices of the checkpoint, then the commit
    assert outcome.status == "migrated", outcome.error
    slices = sorted({n for n, _ in caps if n <= 4})
    assert slices == [1, 2, 3, 4]
    whole = (CAP >> 20) * 10**6 / 2**20  # set in MB, shown by DuckDB in MiB
    for number in slices:  # half the cap beside the other reader, then the whole of it alone
        first, again = (float(cap.split()[0]) for n, cap in caps if n == number)
        assert (first, again) == (pytest.approx(whole / 2, abs=0.1), pytest.approx(whole, abs=0.1))
    with catalog.connect() as con:  # nothing of a failed parse was kept: every row once
        landed = con.execute("select count(*), count(distinct line_number) from delta_log_actions "
                             "where table_name = 't' and source = 'checkpoint'").fetchone()
        live = con.execute("select count(*) from delta_files where table_name = 't' and removed_version is null")
        assert live.fetchone()[0] == len(deltalake.DeltaTable(str(table)).get_add_actions()) == 3_001
    assert landed == (3_002, 3_002)
