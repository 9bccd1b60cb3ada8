"""Table names (issue 12 §5): any Unicode name works on every engine, stored in NFC; empty names,
control characters and line breaks, and names over 255 characters are refused at `migrate`.

One small delta-rs table is copied under every odd name into one catalog per engine, migrated
through the CLI from a manifest (so one dbt build serves them all), then each table is validated
alone (the path that hands its name to dbt as a variable), looked at with status and drift, and
finalized or rolled back. Oracles: delta-rs's own reading of the table, and the catalog rows of
the other tables, read back in full and grouped by name in Python (not by the engine's `=`).
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import deltalake
import pytest
import yaml
from click.testing import CliRunner
from conftest import ENGINES, invoke_cli, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.catalog import Catalog
from delta2sql.cli import main

LIMIT = 255  # the documented limit (README, `migrate --help`), written out here on purpose

EMOJI_FOLDER = "box📦"  # migrated under its folder's name
QUOTED = "O'Brien \"q\" sales.v2 caf\u0065\u0301 'x'); drop table delta_files; --"  # NFD é in the manifest
QUOTED_NFC = unicodedata.normalize("NFC", QUOTED)
LONG = ("📦📦📦📦📦 it's \"q\". " * 20)[:LIMIT]  # at the limit: 255 characters, 100 of them 4 bytes
UPPER, LOWER = "Events", "events"  # differ only in case; Events stops at version UPPER_VERSION, so a
UPPER_VERSION = 2                   # check or a delete that took one for the other would show
NAMES = [EMOJI_FOLDER, QUOTED_NFC, LONG, UPPER, LOWER]

# every relation holding a table's rows, read whole: the "untouched" oracle
RELATIONS = ("delta_log_tables", "delta_log_files", "delta_log_actions", "migration_runs", "delta_tables",
             "delta_commits", "delta_files", "delta_removes", "delta_metadata", "delta_protocol",
             "validation_results")


def events(output: str, kind: str) -> list[dict]:
    return [e for e in (json.loads(line) for line in output.splitlines() if line.startswith("{")) if e["event"] == kind]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The one small table every name gets a copy of, with what delta-rs reads in it."""
    root = tmp_path_factory.mktemp("names") / "appends"
    DELTALAKE_FIXTURES["appends"](root)
    table = deltalake.DeltaTable(str(root))
    latest, live = table.version(), set(table.get_add_actions(flatten=True).column("path").to_pylist())
    assert (latest, len(live)) == (3, 4)  # four appends, nothing removed: the fixture's own facts
    table.load_as_version(UPPER_VERSION)
    earlier = set(table.get_add_actions(flatten=True).column("path").to_pylist())
    assert len(earlier) == 3 and earlier < live
    return root, latest, {UPPER_VERSION: earlier, latest: live}


def rows_by_table(catalog: Catalog) -> dict[str, dict[str, list]]:
    """Every row of RELATIONS, grouped by table_name in Python."""
    grouped: dict[str, dict[str, list]] = {}
    with catalog.connect() as con:
        for relation in RELATIONS:
            cursor = con.execute(f"select * from {relation}")
            column = [d[0] for d in cursor.description].index("table_name")
            for row in cursor.fetchall():
                grouped.setdefault(row[column], {}).setdefault(relation, []).append(repr(row))
    return {name: {r: sorted(rows) for r, rows in relations.items()} for name, relations in grouped.items()}


def live_files(catalog: Catalog, name: str, version: int) -> set[str]:
    with catalog.connect() as con:
        rows = con.execute("select table_name, path, added_version, removed_version from delta_files").fetchall()
    return {path for table, path, added, removed in rows
            if table == name and added <= version and (removed is None or removed > version)}


def statuses(catalog: Catalog) -> dict[str, str]:
    with catalog.connect() as con:
        return dict(con.execute("select table_name, status from delta_log_tables").fetchall())


def validate_alone(catalog: Catalog, name: str) -> None:
    result = invoke_cli(catalog, "validate", name)
    assert result.exit_code == 0, result.output
    checks = events(result.output, "check")
    assert {c["table_name"] for c in checks} == {name}
    assert {c["level"] for c in checks} == {"structure", "snapshot", "bytes"}
    assert [c for c in checks if c["status"] != "pass"] == []
    [finished] = events(result.output, "validation_finished")
    assert finished["failed"] == 0 and finished["checks"] == len(checks)


@pytest.mark.parametrize("engine", ENGINES)
def test_odd_names_migrate_validate_finalize_and_roll_back(engine, tmp_path, source):
    root, version, delta_rs_live = source
    versions = {**dict.fromkeys(NAMES, version), UPPER: UPPER_VERSION}
    catalog = make_catalog(engine, tmp_path, "names")
    lake = tmp_path / "lake"
    folders = {EMOJI_FOLDER: EMOJI_FOLDER, QUOTED: "quoted", LONG: "long", UPPER: "upper", LOWER: "lower"}
    for folder in folders.values():
        shutil.copytree(root, lake / folder)
    manifest = tmp_path / "tables.yml"
    entries = [{"path": f"lake/{EMOJI_FOLDER}"}]  # no name: the folder's
    entries += [{"path": f"lake/{folder}", "name": name} for name, folder in folders.items() if name != EMOJI_FOLDER]
    entries[[e.get("name") for e in entries].index(UPPER)]["version"] = UPPER_VERSION
    manifest.write_text(yaml.safe_dump({"tables": entries}, allow_unicode=True), encoding="utf-8")

    result = invoke_cli(catalog, "migrate", "--manifest", str(manifest))
    assert result.exit_code == 0, result.output
    assert sorted(e["name"] for e in events(result.output, "migration_finished")) == sorted(NAMES)
    assert statuses(catalog) == dict.fromkeys(NAMES, "migrated")  # QUOTED arrived in NFC
    for name in NAMES:
        assert live_files(catalog, name, versions[name]) == delta_rs_live[versions[name]], name
    assert live_files(catalog, UPPER, version) == delta_rs_live[UPPER_VERSION]  # nothing of events' version 3

    result = invoke_cli(catalog, "status")
    listed = {e["table_name"]: e["status"] for e in events(result.output, "table_status")}
    assert listed == dict.fromkeys(NAMES, "migrated")
    for name in NAMES:
        result = invoke_cli(catalog, "status", name)
        assert result.exit_code == 0, result.output
        [row] = events(result.output, "table_status")
        assert (row["table_name"], row["latest_version"], row["versions_behind"]) == \
            (name, versions[name], version - versions[name])
        result = invoke_cli(catalog, "drift", name)
        assert result.exit_code == (3 if name == UPPER else 0), result.output  # 3: the log has newer versions
        assert [(e["table"], e["catalog_version"]) for e in events(result.output, "drift_finished")] == \
            [(name, versions[name])]

    for name in (LONG, UPPER, LOWER):  # each alone: its name reaches the dbt tests as a variable
        validate_alone(catalog, name)
    before = rows_by_table(catalog)
    for name in (EMOJI_FOLDER, QUOTED_NFC):  # finalize validates alone too, then records the cut-over
        result = invoke_cli(catalog, "finalize", name)
        assert result.exit_code == 0, result.output
        assert [e["version"] for e in events(result.output, "finalized")] == [version]
        assert rows_by_table(catalog)[LONG] == before[LONG]
    assert statuses(catalog) == {**dict.fromkeys(NAMES, "migrated"), EMOJI_FOLDER: "finalized", QUOTED_NFC: "finalized"}
    validated = rows_by_table(catalog)
    for name in NAMES:  # every table validated once, alone, at all levels, all passed
        with catalog.connect() as con:
            results = [row for row in con.execute("select table_name, level, status from validation_results").fetchall()
                       if row[0] == name]
        assert {level for _, level, _ in results} == {"structure", "snapshot", "bytes"}, name
        assert {status for _, _, status in results} == {"pass"}, name
        assert len(results) == len(validated[UPPER]["validation_results"]), name

    # names that differ only in case: each rolled back on its own, the other untouched
    result = invoke_cli(catalog, "rollback", UPPER)
    assert result.exit_code == 0, result.output
    after = rows_by_table(catalog)
    assert UPPER not in after and after == {n: rows for n, rows in validated.items() if n != UPPER}
    assert invoke_cli(catalog, "status", UPPER).exit_code == 1
    assert [e["status"] for e in events(invoke_cli(catalog, "status", LOWER).output, "table_status")] == ["migrated"]
    result = invoke_cli(catalog, "rollback", LOWER)
    assert result.exit_code == 0, result.output
    assert rows_by_table(catalog) == {n: rows for n, rows in validated.items() if n not in (UPPER, LOWER)}
    result = invoke_cli(catalog, "rollback", LONG)
    assert result.exit_code == 0, result.output
    assert statuses(catalog) == {EMOJI_FOLDER: "finalized", QUOTED_NFC: "finalized"}


@pytest.mark.parametrize("engine", ENGINES)
def test_names_breaking_the_policy_are_refused_at_migrate(engine, tmp_path, source):
    """Nothing is landed, and the message names the rule."""
    root, _, _ = source
    catalog = make_catalog(engine, tmp_path, "refused")
    table = tmp_path / "t"
    shutil.copytree(root, table)
    refused = {
        "x" * (LIMIT + 1): f"at most {LIMIT} characters",
        "📦" * (LIMIT + 1): f"at most {LIMIT} characters",
        "line\nbreak": "control character (U+000A)",
        "nul\x00": "control character (U+0000)",
        "tab\there": "control character (U+0009)",
        "del\x7f": "control character (U+007F)",
        "c1\x85": "control character (U+0085)",
        "ls\u2028": "line separator (U+2028)",
    }
    for name, rule in refused.items():
        result = invoke_cli(catalog, "migrate", str(table), "--name", name)
        assert result.exit_code == 1, result.output
        [error] = events(result.output, "error")
        assert rule in error["message"] and not error["unexpected"], error
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [{"path": "t", "name": "ok"}, {"path": "t", "name": "a\rb"}]}))
    result = invoke_cli(catalog, "migrate", "--manifest", str(manifest))
    assert result.exit_code == 1
    [error] = events(result.output, "error")
    assert "table 2: table name 'a\\rb' contains a control character (U+000D)" in error["message"]
    result = invoke_cli(catalog, "plan", str(table), "--name", "x" * (LIMIT + 1))
    assert result.exit_code == 1 and f"at most {LIMIT} characters" in result.output
    if engine == "postgres":
        with catalog.connect() as con:
            assert not con.relation_exists("delta_log_tables")
    else:
        assert not catalog.path.exists()


def test_empty_default_name_is_refused(tmp_path):
    """The folder `/` has no name to default to."""
    result = CliRunner().invoke(main, ["migrate", "/", "--catalog", str(tmp_path / "c.duckdb"), "--json"])
    assert result.exit_code == 1 and "table name is empty" in result.output


def test_every_name_reaches_dbt_vars_intact():
    """What `--vars` carries is read back by dbt's own parser as the very same text, for names
    the policy allows and for characters YAML would refuse or fold raw."""
    from dbt.config.utils import parse_cli_yaml_string

    from delta2sql.dbt_runner import _vars_text

    for name in [EMOJI_FOLDER, QUOTED, LONG, "a\\ud83d\\", "{{ var('x') }} {% raw %}",
                 "é\u0301\ufeff\uffff\U0001f9d1\u200d\U0001f4bb", "c1\x85 ls\u2028 nul\x00 tab\t"]:
        text = _vars_text({"table_name": name})
        assert text.isascii()
        assert parse_cli_yaml_string(text, "vars") == {"table_name": name}
