"""The table and run lifecycle (issue 14, sections 1 and 2): every move from every status, on every
engine, and the leases that tell a live run from an interrupted one. A move from a status where it starts lands where `lifecycle.TABLE_MOVES` /
`RUN_MOVES` say; from any other it is refused with a message naming the table (or run) and
where it stands, and nothing changes. The SQL that reads a status agrees with the module."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from conftest import ENGINES, REPO, make_catalog

from delta2sql import lifecycle
from delta2sql.extract import load_sql
from delta2sql.landing_schema import create_landing_tables, declared_columns
from delta2sql.lifecycle import (
    RUN_MOVES,
    TABLE_MOVES,
    IllegalTransition,
    Lease,
    RunInProgress,
    RunStatus,
    TableStatus,
)

LATEST = 5  # every walked table stands at version 5


def _put_table(con, status: TableStatus | None) -> None:
    con.execute("delete from delta_log_tables where table_name = 't'")
    if status is not None:
        con.execute("insert into delta_log_tables (table_name, table_uri, replay_start_version, latest_version, status) "
                    "values ('t', '/t', 0, ?, ?)", [LATEST, status.value])


def _put_run(con, status: RunStatus | None) -> str:
    con.execute("delete from migration_runs where table_name = 't'")
    run_id = uuid.uuid4().hex
    if status is not None:
        con.execute("insert into migration_runs (run_id, table_name, target, mode, from_version, to_version, "
                    "batch_size, checkpoint_batch_rows, num_batches, status, started_at) "
                    "values (?, 't', 'duckdb', 'full', 0, ?, 1000, 1000, 1, ?, current_timestamp)",
                    [run_id, LATEST, status.value])
    return run_id


def _table_status(con) -> str | None:
    row = con.execute("select status from delta_log_tables where table_name = 't'").fetchone()
    return None if row is None else row[0]


def _run_status(con, run_id: str) -> str | None:
    row = con.execute("select status from migration_runs where run_id = ?", [run_id]).fetchone()
    return None if row is None else row[0]


# each table move as its module function would be called by the code that makes it
TABLE_CALLS = {
    "start": lambda con, run_id: lifecycle.start(con, "t", "/t", 0, LATEST, None, None, "[]"),
    "publish": lambda con, run_id: lifecycle.publish(con, "t", run_id, "full", 0, LATEST, 1.0),
    "publish_catch_up": lambda con, run_id: lifecycle.publish(con, "t", run_id, "catch_up", LATEST + 1, LATEST + 3, 1.0),
    "record_build": lambda con, run_id: lifecycle.record_build(con, "t", LATEST, 1.0),
    "finalize": lambda con, run_id: lifecycle.finalize(con, "t", LATEST),
    "commit_in_catalog": lambda con, run_id: lifecycle.commit_in_catalog(con, "t", LATEST, LATEST + 1),
    "start_rollback": lambda con, run_id: lifecycle.start_rollback(con, "t"),
    "finish_rollback": lambda con, run_id: lifecycle.finish_rollback(con, "t", LATEST),
    "roll_back_to": lambda con, run_id: lifecycle.roll_back_to(con, "t", LATEST - 1),
    "remove": lambda con, run_id: lifecycle.remove(con, "t"),
}
RUN_CALLS = {
    "start_run": lambda con, run_id: lifecycle.start_run(con, run_id, "t", "duckdb", "full", 0, LATEST, None, 1000,
                                                         1000, 1),
    "publish": lambda con, run_id: lifecycle.publish(con, "t", run_id, "full", 0, LATEST, 1.0),
    "fail_run": lambda con, run_id: lifecycle.fail_run(con, run_id, "boom"),
    "abandon_run": lambda con, run_id: lifecycle.abandon_run(con, run_id, "replaced"),
    "record_build": lambda con, run_id: lifecycle.record_build(con, "t", LATEST, 1.0),
    "fail_build": lambda con, run_id: lifecycle.fail_build(con, "t", "a check failed"),
    "cut_run": lambda con, run_id: lifecycle.cut_run(con, run_id, LATEST - 1, 1),
    "roll_back_run": lambda con, run_id: lifecycle.roll_back_run(con, run_id, LATEST - 1),
}
TABLE_SCOPED_RUN_MOVES = {"record_build", "fail_build"}  # every run of the table that stands where they start


@pytest.fixture(scope="module", params=ENGINES)
def con(request, tmp_path_factory):
    catalog = make_catalog(request.param, tmp_path_factory.mktemp("lifecycle"), "lifecycle")
    with catalog.connect() as connection:
        create_landing_tables(connection)
        yield connection


def test_the_moves_are_the_whole_diagram():
    assert set(TABLE_CALLS) == set(TABLE_MOVES) and set(RUN_CALLS) == set(RUN_MOVES)


@pytest.mark.parametrize("move", sorted(TABLE_MOVES))
def test_every_table_move_from_every_status(con, move):
    for status in (None, *TableStatus):
        _put_table(con, status)
        run_id = _put_run(con, RunStatus.RUNNING)
        target = TABLE_MOVES[move].get(status, "refused")
        if target == "refused":
            with pytest.raises(IllegalTransition) as refused:
                TABLE_CALLS[move](con, run_id)
            message = str(refused.value)
            assert message.startswith("t: ") and move.replace("_", " ") in message
            assert (f"its status is {status}" if status else "not in the catalog") in message
            assert _table_status(con) == status, f"{move} from {status} changed the status"
        else:
            TABLE_CALLS[move](con, run_id)
            assert _table_status(con) == target, f"{move} from {status}"


@pytest.mark.parametrize("move", sorted(RUN_MOVES))
def test_every_run_move_from_every_status(con, move):
    for status in (None, *RunStatus):
        # the table stands where the run move is meant for
        _put_table(con, {"publish": TableStatus.LANDING, "start_run": TableStatus.LANDING}.get(move, TableStatus.LANDED))
        run_id = _put_run(con, status)
        target = RUN_MOVES[move].get(status, "refused")
        if move in TABLE_SCOPED_RUN_MOVES:  # a table's other runs are left where they are
            RUN_CALLS[move](con, run_id)
            assert _run_status(con, run_id) == (status if target == "refused" else target)
        elif target == "refused":
            con.begin()
            with pytest.raises(IllegalTransition) as refused:
                RUN_CALLS[move](con, run_id)
            con.rollback()
            message = str(refused.value)
            assert message.startswith(f"run {run_id[:8]}: ") and move.replace("_", " ") in message
            assert (f"its status is {status}" if status else "not in the catalog") in message
            assert _run_status(con, run_id) == status
        else:
            RUN_CALLS[move](con, run_id)
            assert _run_status(con, run_id) == target, f"{move} from {status}"


def test_a_catch_up_publishes_only_from_the_version_it_started_after(con):
    _put_table(con, TableStatus.MIGRATED)
    run_id = _put_run(con, RunStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="changed while run"):
        lifecycle.publish(con, "t", run_id, "catch_up", LATEST + 2, LATEST + 3, 1.0)  # another run published LATEST + 1
    assert _table_status(con) == TableStatus.MIGRATED and _run_status(con, run_id) == RunStatus.RUNNING


def test_the_sql_that_reads_a_status_agrees_with_the_module():
    published = [(REPO / "models/staging/delta_log/base" / name).read_text()
                 for name in ("base_delta_log__published_actions.sql", "base_delta_log__published_log_files.sql")]
    assert all(re.findall(r"status <> '(\w+)'", sql) == [TableStatus.LANDING] for sql in published)
    scope = re.search(r"tables\.status in \(([^)]*)\)", load_sql("find_validation_scope.sql"))[1]
    assert set(re.findall(r"'(\w+)'", scope)) == set(lifecycle.BUILT)
    staging = yaml.safe_load((REPO / "models/staging/delta_log/stg_delta_log__tables.yml").read_text())
    [status] = [c for m in staging["models"] for c in m["columns"] if c["name"] == "status"]
    [accepted] = [t["accepted_values"]["arguments"]["values"] for t in status["data_tests"]]
    assert set(accepted) == set(TableStatus)


def test_the_adr_draws_the_moves_of_the_module():
    """docs/decisions/0007-lifecycle.md: its two state diagrams are the module's moves."""
    text = (REPO / "docs/decisions/0007-lifecycle.md").read_text()
    tables, runs = (set(re.findall(r"^ {4}(\S+) --> (\S+): (\w+)$", block, re.MULTILINE))
                    for block in re.findall(r"```mermaid\n(.*?)```", text, re.DOTALL))

    def drawn(moves):
        return {(f or "[*]", t or "[*]", move) for move, steps in moves.items() for f, t in steps.items()}

    assert tables == drawn(TABLE_MOVES) and runs == drawn(RUN_MOVES)


def test_a_lease_is_alive_while_its_owner_is():
    """On this host the owner's process decides; on another host, the lease's expiry; a run
    without a lease (an earlier delta2sql's) is taken for interrupted."""
    now = datetime.now(UTC).replace(tzinfo=None)
    here = socket.gethostname()
    with subprocess.Popen(["sleep", "30"]) as alive:
        assert Lease(here, alive.pid, now, now - timedelta(hours=1)).is_alive()  # its batch is long: still alive
        assert not Lease(here, alive.pid, now, now + timedelta(hours=1), landing=False).is_alive()  # its run failed
        alive.kill()
        alive.wait()
        assert not Lease(here, alive.pid, now, now + timedelta(hours=1)).is_alive()
    assert Lease("elsewhere", 1, now, now + timedelta(minutes=1)).is_alive()
    assert not Lease("elsewhere", 1, now, now - timedelta(seconds=1)).is_alive()
    assert not Lease(None, None, None, None).is_alive()
    assert not Lease(here, os.getpid(), now, now + timedelta(hours=1)).is_alive()  # this process: it resumes its own


def test_a_run_taken_over_stops_its_first_owner(con):
    """Of two processes, the one whose run was taken over (its lease ran out on another host)
    cannot commit a batch: its heartbeat is refused."""
    _put_table(con, TableStatus.LANDING)
    run_id = uuid.uuid4().hex
    con.execute("delete from migration_runs where table_name = 't'")
    lifecycle.start_run(con, run_id, "t", "duckdb", "full", 0, LATEST, None, 1000, 1000, 1)
    lifecycle.heartbeat(con, "t", run_id)  # its own: renewed
    con.execute("update migration_runs set owner_host = 'elsewhere', owner_pid = 1 where run_id = ?", [run_id])
    with pytest.raises(RunInProgress, match="taken over by elsewhere:1"):
        lifecycle.heartbeat(con, "t", run_id)
    with pytest.raises(RunInProgress, match="is being landed by elsewhere:1"):  # its lease runs: not taken back
        lifecycle.take_over(con, "t", run_id, lifecycle.run_lease(con, run_id))
    con.execute("update migration_runs set lease_expires_at = ? where run_id = ?",
                [datetime(2000, 1, 1), run_id])
    lifecycle.take_over(con, "t", run_id, lifecycle.run_lease(con, run_id))  # ran out: taken over
    assert lifecycle.run_lease(con, run_id).is_mine()


def test_an_older_catalog_gains_the_columns_added_since(con):
    """A catalog written before ETags and recorded run times existed: its tables get the new columns, empty."""
    for table, column in (("delta_log_files", "etag"), ("migration_runs", "build_seconds")):
        con.execute(f"drop table {table}")
        ddl = re.search(rf"create table if not exists {table} \(.*?\n\);", load_sql("create_landing_tables.sql"), re.DOTALL)[0]
        con.execute_script(re.sub(rf",?\n\s*{column}\s+\w+[^\n]*", "", ddl))
        assert column not in con.columns(table)
    create_landing_tables(con)
    assert [c for c, _ in declared_columns()["delta_log_files"]] == con.columns("delta_log_files")
    assert [c for c, _ in declared_columns()["migration_runs"]] == con.columns("migration_runs")
