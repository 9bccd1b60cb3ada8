"""Tables in an object store (issue 13): the same fixture tables uploaded to moto's S3 server and
to Azurite on 127.0.0.1 give the same catalog as from local disk, validate at every level against delta-rs
reading the same URI, drift and catch up; the listing starts at the checkpoint hint; bad
buckets and prefixes are named; rollback writes with the store's put-if-absent; and no secret
reaches the catalog, the output or the `--json` events.

The columns that describe where and how the log is stored differ by construction, and only
those are left out of the comparison: IGNORED below."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import obstore
import pytest
from click.testing import CliRunner
from conftest import RecordingReporter, invoke_cli, make_catalog, write_calibration
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import HANDWRITTEN_FIXTURES, SURVIVABLE_FIXTURES
from object_stores import AZURITE_KEY, SERVERS, FaultProxy

from delta2sql import log_store
from delta2sql.calibration_tables import Shape, write_table
from delta2sql.catalog import Catalog
from delta2sql.cli import main
from delta2sql.fingerprint import table_fingerprints
from delta2sql.log_listing import plan_segment
from delta2sql.log_store import (
    DEFAULT_IO_CONCURRENCY,
    ObjectStoreLog,
    open_log,
    session,
    set_io_concurrency,
    use_storage_options,
)
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.object_downloads import Downloads
from delta2sql.runs import RunOptions
from delta2sql.validate import validate_tables
from delta2sql.writer import CatalogWriter

DELTA2SQL = str(Path(sys.executable).parent / "delta2sql")
# Where the log is (the URI) and what the store says of each object (its time and ETag); a
# commit without an in-commit timestamp takes its time from the file's modification time.
IGNORED = frozenset({
    "delta_log_tables.table_uri", "delta_log_files.modification_time", "delta_log_files.etag",
    "delta_commits.commit_timestamp", "delta_tables.table_uri",
})
# Every checkpoint kind and listing case of the fixtures, and a stale or corrupt hint.
TABLES = {
    **{name: DELTALAKE_FIXTURES[name] for name in ("checkpoints", "metadata_cleanup", "partitioned",
                                                      "change_data_feed", "app_transactions")},
    **{name: HANDWRITTEN_FIXTURES[name] for name in ("multipart_checkpoint", "v2_checkpoint_sidecars",
                                                        "v2_checkpoint_json", "v2_checkpoint_classic_name",
                                                        "crc_files", "url_encoded_paths", "json_layouts",
                                                        "in_commit_timestamps", "deletion_vectors")},
    **{name: SURVIVABLE_FIXTURES[name][0] for name in ("stale_last_checkpoint", "corrupt_last_checkpoint",
                                                          "multipart_missing_part_with_older_complete")},
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request):
    with SERVERS[request.param]() as running:
        yield running


@pytest.fixture(scope="module")
def both_sides(server, tmp_path_factory):
    """Every table of TABLES migrated and validated from local disk and from the store, one
    catalog each."""
    root = tmp_path_factory.mktemp("object-store")
    location = server.new_location()
    local, remote = {}, {}
    for name, build in TABLES.items():
        build(root / name)
        local[name] = root / name
        remote[name] = server.upload(root / name, f"{location}/{name}")
        use_storage_options(server.options(), uri=remote[name])
    catalogs = {}
    for side, tables in (("local", local), ("store", remote)):
        catalog = make_catalog("duckdb", root, side)
        reporter = RecordingReporter()
        outcomes = migrate_tables([TableSpec(location, name) for name, location in tables.items()], catalog, reporter)
        checks = validate_tables(catalog, reporter)
        catalogs[side] = (catalog, {o.name: o for o in outcomes}, checks)
    return catalogs


def test_same_catalog_as_from_local_disk(both_sides):
    (local, local_outcomes, _), (remote, remote_outcomes, _) = both_sides["local"], both_sides["store"]
    assert {n: o.status for n, o in remote_outcomes.items()} == {n: "migrated" for n in TABLES}, \
        {n: o.error for n, o in remote_outcomes.items() if o.error}
    assert all(o.status == "migrated" for o in local_outcomes.values())
    with local.connect() as a, remote.connect() as b:
        differences = {
            name: [r for r, fp in table_fingerprints(a, name, IGNORED).items()
                   if fp != table_fingerprints(b, name, IGNORED)[r]]
            for name in TABLES
        }
        uris = dict(b.execute("select table_name, table_uri from delta_log_tables").fetchall())
        etags = b.execute("select count(*), count(etag) from delta_log_files").fetchone()
    assert {name: d for name, d in differences.items() if d} == {}
    assert all(uri.startswith(("s3://", "abfss://")) and uri.endswith(f"/tables/{name}") for name, uri in uris.items())
    assert etags[0] > 0 and etags[0] == etags[1]  # every landed object has its ETag recorded


def test_validates_at_every_level_against_delta_rs_on_the_same_uri(both_sides):
    _, _, checks = both_sides["store"]
    assert {c.level for c in checks} == {"structure", "snapshot", "bytes"}
    failed = [(c.table_name, c.check_name, c.details) for c in checks if c.failed]
    assert failed == []
    snapshot_tables = {c.table_name for c in checks if c.level == "snapshot" and c.status == "pass"}
    assert snapshot_tables == set(TABLES)


def test_listing_starts_at_the_checkpoint_hint(server, tmp_path):
    """`checkpoints` has commits 0..24, checkpoints at 10 and 20 and a hint at 20: nothing before
    version 20 is listed. A hint at a missing checkpoint falls back to the whole listing."""
    DELTALAKE_FIXTURES["checkpoints"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    use_storage_options(server.options(), uri=uri)
    with session():
        log = open_log(uri)
        listed = _recording_listing(log)
        segment = plan_segment(log)
    assert segment.checkpoint.version == 20 and segment.latest_version == 24
    assert [offset for offset, _ in listed] == [f"{20:020d}"]
    assert min(name for _, names in listed for name in names) >= f"{20:020d}"

    store = server.store(uri)
    obstore.put(store, "_delta_log/_last_checkpoint", json.dumps({"version": 22, "size": 1}).encode())
    with session():
        log = open_log(uri)
        listed = _recording_listing(log)
        segment = plan_segment(log)
    assert segment.checkpoint.version == 20
    assert [offset for offset, _ in listed] == [f"{22:020d}", None]  # the tail could not decide
    assert any("_last_checkpoint points at version 22" in w for w in segment.warnings)


def _recording_listing(log: ObjectStoreLog) -> list[tuple[str | None, list[str]]]:
    calls = []
    original = log.list

    def listing(offset=None, prefix=""):
        objects = original(offset=offset, prefix=prefix)
        calls.append((offset, [o.name for o in objects]))
        return objects

    log.list = listing
    return calls


def test_a_commit_is_fetched_once_per_migrate(server, tmp_path):
    DELTALAKE_FIXTURES["checkpoints"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    use_storage_options(server.options(), uri=uri)
    fetched = []
    original = Downloads._download

    def download(self, key, *rest):
        fetched.append(key.removeprefix("_delta_log/"))
        return original(self, key, *rest)

    Downloads._download = download
    try:
        [outcome] = migrate_tables([TableSpec(uri, "t")], make_catalog("duckdb", tmp_path, "c"), RecordingReporter())
    finally:
        Downloads._download = original
    assert outcome.status == "migrated", outcome.error
    assert sorted(fetched) == sorted(set(fetched))
    assert f"{20:020d}.checkpoint.parquet" in fetched and f"{24:020d}.json" in fetched
    assert not any(name.startswith(f"{i:020d}.") for name in fetched for i in range(20))


def test_the_next_batches_are_fetched_while_one_is_landed(server, tmp_path):
    """With --io-concurrency 2 and batches of 3 commits: never more than 2 downloads at once, and
    when the first batch is committed, the files of the next two batches have been asked for
    (fetched while it was landed) and none after them. The fixture has a checkpoint at 30 and
    commits up to 39."""
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    use_storage_options(server.options(), uri=uri)
    lock, in_flight, most, asked = threading.Lock(), [0], [0], []
    original_start, original_download = Downloads.start, Downloads._download

    def start(self, key, *rest):
        asked.append(key.removeprefix("_delta_log/"))
        return original_start(self, key, *rest)

    def download(self, key, *rest):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return original_download(self, key, *rest)
        finally:
            with lock:
                in_flight[0] -= 1

    asked_at_first_commit = []

    class Recording(RecordingReporter):
        def event(self, kind, **fields):
            super().event(kind, **fields)
            if kind == "batch_committed" and not asked_at_first_commit:
                asked_at_first_commit.extend(asked)

    Downloads.start, Downloads._download = start, download
    set_io_concurrency(2)
    catalog = make_catalog("duckdb", tmp_path, "c")
    try:
        [outcome] = migrate_tables([TableSpec(uri, "t")], catalog, Recording(), RunOptions(batch_size=3))
    finally:
        Downloads.start, Downloads._download = original_start, original_download
        set_io_concurrency(DEFAULT_IO_CONCURRENCY)
    assert outcome.status == "migrated", outcome.error
    assert 1 <= most[0] <= 2
    with catalog.connect() as con:
        third_batch_ends = con.execute("select last_version from migration_batches order by batch_number "
                                       "limit 1 offset 2").fetchone()[0]
    versions = {int(name[:20]) for name in asked_at_first_commit if name[:20].isdigit()}
    assert max(versions) == third_batch_ends
    assert {f"{v:020d}.json" for v in range(31, third_batch_ends + 1)} <= set(asked_at_first_commit)
    assert len(asked) == len(set(asked))  # and each object once


def test_commits_are_held_in_memory_and_spill_to_the_spool_past_the_budget(server, tmp_path, monkeypatch):
    """While the batches are landed, the spool holds the checkpoint and no commit: the commits
    are held in memory. With no memory budget every commit goes to the spool instead, and the
    catalog is the same. The fixture has a checkpoint at 30 and commits up to 39."""
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    use_storage_options(server.options(), uri=uri)

    def migrate(budget: int, side: str) -> tuple[Catalog, set[str]]:
        monkeypatch.setattr(log_store, "HELD_BYTES", budget)
        spooled = set()
        with session():
            log = open_log(uri)  # the migrate's own, as the session keeps it

            class Recording(RecordingReporter):
                def event(self, kind, **fields):
                    super().event(kind, **fields)
                    if kind == "batch_committed":
                        spooled.update(p.name for p in log.local_dir.rglob("*") if p.is_file())

            catalog = make_catalog("duckdb", tmp_path, side)
            [outcome] = migrate_tables([TableSpec(uri, "t")], catalog, Recording(), RunOptions(batch_size=3))
        assert outcome.status == "migrated", outcome.error
        return catalog, spooled

    held, held_spool = migrate(log_store.HELD_BYTES, "held")
    spilled, spilled_spool = migrate(0, "spilled")
    assert held_spool == {f"{30:020d}.checkpoint.parquet"}
    assert {f"{v:020d}.json" for v in range(31, 40)} <= spilled_spool
    with held.connect() as a, spilled.connect() as b:
        assert table_fingerprints(a, "t", frozenset()) == table_fingerprints(b, "t", frozenset())


def test_drift_and_catch_up(server, tmp_path):
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/orders")
    catalog = make_catalog("duckdb", tmp_path, "c")
    options = [f"--storage-option={k}={v}" for k, v in server.options().items()]
    assert invoke_cli(catalog, "migrate", uri, *options).exit_code == 0
    assert _drift(catalog, options) == (0, [])

    store = server.store(uri)
    last = f"_delta_log/{3:020d}.json"
    obstore.put(store, f"_delta_log/{4:020d}.json", obstore.get(store, last).bytes().to_bytes())
    assert _drift(catalog, options) == (3, ["behind"])
    result = invoke_cli(catalog, "migrate", uri, *options)
    assert result.exit_code == 0, result.output
    finished = [e for e in map(json.loads, result.output.splitlines()) if e.get("event") == "migration_finished"]
    assert finished[0]["mode"] == "catch_up" and finished[0]["latest_version"] == 4

    obstore.put(store, last, obstore.get(store, last).bytes().to_bytes() + b"\n")
    assert _drift(catalog, options) == (4, ["changed"])
    obstore.delete(store, f"_delta_log/{1:020d}.json")
    code, kinds = _drift(catalog, options)
    assert code == 4 and sorted(kinds) == ["changed", "disappeared", "unreplayable"]  # as from local disk


def _drift(catalog: Catalog, options: list[str]) -> tuple[int, list[str]]:
    result = invoke_cli(catalog, "drift", "orders", *options)
    return result.exit_code, [e["finding"] for e in map(json.loads, result.output.splitlines()) if e.get("event") == "drift"]


def test_bad_locations_are_named_and_nothing_is_migrated(server, tmp_path):
    catalog = make_catalog("duckdb", tmp_path, "c")
    location = server.new_location()
    with_credentials = (location.replace("s3://", "s3://key:secret@") if server.name == "s3"
                        else location + "?sig=secret")
    cases = {
        (server.location(f"no-such-{uuid.uuid4().hex[:6]}"), "does not exist"): server.options(),
        (f"{location}/empty", "not a Delta table"): server.options(),
        (with_credentials, "carries credentials"): server.options(),
    }
    if server.name == "azure":  # moto takes any key pair; Azurite checks the account key
        DELTALAKE_FIXTURES["appends"](tmp_path / "t")
        uri = server.upload(tmp_path / "t", f"{location}/t")
        cases[(uri, "rejected the credentials")] = server.options(secret="d2s" + AZURITE_KEY[3:])
    for (uri, expected), options in cases.items():
        result = invoke_cli(catalog, "migrate", uri, "--name", "t", *[f"--storage-option={k}={v}" for k, v in options.items()])
        errors = [e["error"] for e in map(json.loads, result.output.splitlines()) if e.get("event") == "table_failed"]
        assert result.exit_code == 1
        assert errors and expected in errors[0] and uri.split("?")[0].replace("key:secret@", "") in errors[0], errors
        assert "secret" not in result.output and options[server.secret_key] not in result.output
    assert not catalog.path.exists()  # nothing landed, so nothing kept


def test_no_secret_in_catalog_output_or_events(server, tmp_path):
    options = server.options(secret=f"d2s-{uuid.uuid4().hex}") if server.name == "s3" else server.options()
    secret = options[server.secret_key]
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    catalog = make_catalog("duckdb", tmp_path, "c")
    outputs = []
    for command in (["migrate", uri], ["validate", "t"], ["status", "t"], ["drift", "t"], ["plan", uri]):
        result = invoke_cli(catalog, *command, *[f"--storage-option={k}={v}" for k, v in options.items()])
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.output)
    assert secret not in "".join(outputs)
    assert secret.encode() not in catalog.path.read_bytes()


def test_put_if_absent_is_enforced_by_the_server(server):
    store = server.store(f"{server.new_location()}/t")
    obstore.put(store, "_delta_log/x.json", b"first", mode="create")
    with pytest.raises(obstore.exceptions.AlreadyExistsError):
        obstore.put(store, "_delta_log/x.json", b"second", mode="create")
    assert obstore.get(store, "_delta_log/x.json").bytes().to_bytes() == b"first"


def test_rollback_writes_back_with_put_if_absent(server, tmp_path):
    """A clash is reported and its bytes kept; a server that does not enforce put-if-absent is
    refused before anything is written; then the catalog's commits go back."""
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    catalog = make_catalog("duckdb", tmp_path, "c")
    options = [f"--storage-option={k}={v}" for k, v in server.options().items()]
    assert invoke_cli(catalog, "migrate", uri, *options).exit_code == 0
    result = invoke_cli(catalog, "finalize", "t", *options)
    assert result.exit_code == 0, result.output
    use_storage_options(server.options(), uri=uri)
    writer = CatalogWriter(catalog, "t")
    latest = writer.latest_version()
    commit = {"commitInfo": {"timestamp": 1_700_000_000_000, "operation": "WRITE", "operationParameters": {}}}
    writer.commit([commit], latest)
    writer.commit([commit], latest + 1)

    store = server.store(uri)
    clash = f"_delta_log/{latest + 2:020d}.json"
    obstore.put(store, clash, b'{"commitInfo":{"written":"outside"}}\n')
    result = invoke_cli(catalog, "rollback", "t", *options)
    assert result.exit_code == 1 and "already exists with other bytes" in result.output
    assert obstore.get(store, clash).bytes().to_bytes() == b'{"commitInfo":{"written":"outside"}}\n'  # kept

    obstore.delete(store, clash)
    if server.name == "s3":  # a server that ignores If-None-Match (Azure signs the header: it would refuse)
        with FaultProxy(server.base, drop_headers=("if-none-match",)) as careless:
            result = invoke_cli(catalog, "rollback", "t",
                                *[f"--storage-option={k}={v}" for k, v in server.options(via=careless.endpoint).items()])
        assert result.exit_code == 1 and "overwrote an object on a conditional PUT" in result.output, result.output
        # nothing written (version latest + 1 went back before the clash), and the probe removed
        assert not [m for m in obstore.list(store, "_delta_log/").collect() if f"_delta_log/{latest + 2:020d}" <= m["path"]
                    < "_delta_log/_" or ".delta2sql-put-if-absent-" in m["path"]]
    result = invoke_cli(catalog, "rollback", "t", *options)
    assert result.exit_code == 0, result.output
    assert obstore.head(store, clash)["size"] > 0
    assert not [m for m in obstore.list(store, "_delta_log/").collect() if ".delta2sql-put-if-absent-" in m["path"]]
    with session():
        assert plan_segment(uri).latest_version == latest + 2


def test_killed_migrate_resumes_after_the_committed_batches(server, tmp_path):
    """SIGKILL after two committed batches, then the same command: it resumes after them and ends
    with the catalog an uninterrupted migration from local disk gives."""
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    catalog = make_catalog("duckdb", tmp_path, "killed")
    command = [DELTA2SQL, "migrate", uri, "--name", "t", "--batch-size", "3", "--json", "--catalog", str(catalog.path),
               *[f"--storage-option={k}={v}" for k, v in server.options().items()]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    committed = 0
    for line in process.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "batch_committed":
            committed += 1
            if committed == 2:
                process.send_signal(signal.SIGKILL)
                break
    process.stdout.close()
    assert process.wait() == -signal.SIGKILL
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    [resumed] = [e for e in events if e["event"] == "run_resumed"]
    assert resumed["committed"] == 2

    clean = make_catalog("duckdb", tmp_path, "clean")
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], clean, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    with clean.connect() as a, catalog.connect() as b:
        assert table_fingerprints(a, "t", IGNORED) == table_fingerprints(b, "t", IGNORED)


def _local_fingerprints(table: Path, tmp_path: Path) -> dict:
    clean = make_catalog("duckdb", tmp_path, "clean" + uuid.uuid4().hex[:4])
    [outcome] = migrate_tables([TableSpec(table, "t")], clean, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    with clean.connect() as con:
        return table_fingerprints(con, "t", IGNORED)


def test_throttling_bursts_and_dropped_connections_are_retried(server, tmp_path):
    """503 and 429 answers and connections closed unanswered, in the middle of a migrate: the
    store client retries them with backoff, and the run completes with the same catalog."""
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    injected = {**dict.fromkeys(range(6, 10), 503), **dict.fromkeys(range(10, 13), 429), 16: "drop", 17: "drop"}
    catalog = make_catalog("duckdb", tmp_path, "c")
    with FaultProxy(server.base, lambda number, method, path: injected.get(number)) as proxy:
        use_storage_options(server.options(via=proxy.endpoint), uri=uri)
        [outcome] = migrate_tables([TableSpec(uri, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    assert proxy.counts()["fault"] == len(injected)
    with catalog.connect() as con:
        assert table_fingerprints(con, "t", IGNORED) == _local_fingerprints(tmp_path / "t", tmp_path)


def test_a_permanent_error_stops_the_run_which_resumes_later(server, tmp_path):
    """Access to the commits from version 34 on is denied: the batches before them commit (the
    checkpoint at 30, its commit, 31-33: three), the run fails naming the URI, nothing is marked
    migrated; once access is back the same migrate resumes after those three. Denied by object,
    not from a moment on: the next batches are fetched while one is landed, so a denial from a
    moment on would hit whichever batch was being fetched then."""
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    catalog = make_catalog("duckdb", tmp_path, "c")
    denied = {"on": True}

    def fault(number, method, path):
        name = path.split("?")[0].rsplit("/", 1)[-1]
        commit = method == "GET" and name.endswith(".json") and name[:20].isdigit()
        return 403 if denied["on"] and commit and int(name[:20]) >= 34 else None

    reporter = RecordingReporter()
    with FaultProxy(server.base, fault) as proxy:
        use_storage_options(server.options(via=proxy.endpoint), uri=uri)
        [failed] = migrate_tables([TableSpec(uri, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
        assert failed.status == "failed" and uri in failed.error and "403" in failed.error, failed.error
        with catalog.connect() as con:
            assert con.execute("select status from delta_log_tables").fetchall() == [("landing",)]
            assert con.execute("select count(*) from migration_batches").fetchone()[0] == 3
        denied["on"] = False  # access is back
        [outcome] = migrate_tables([TableSpec(uri, "t")], catalog, reporter, RunOptions(batch_size=3))
    assert outcome.status == "migrated" and outcome.mode == "resume" and outcome.batches_skipped == 3
    assert outcome.batches == 2  # 34-36 and 37-39
    with catalog.connect() as con:
        assert table_fingerprints(con, "t", IGNORED) == _local_fingerprints(tmp_path / "t", tmp_path)


def test_settings_from_the_environment_alone(server, tmp_path, monkeypatch):
    """No --storage-option: the store's settings and credentials come from the environment, as
    for each cloud's own tools, for the landing and for delta-rs in the validation."""
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    for key, value in server.options().items():
        monkeypatch.setenv(key, value)
    catalog = make_catalog("duckdb", tmp_path, "c")
    for command in (["migrate", uri], ["validate", "t"]):
        result = invoke_cli(catalog, *command)
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def s3_alone():
    """moto's S3 server, for what only S3 has."""
    with SERVERS["s3"]() as running:
        yield running


def test_aws_credentials_from_a_profile(s3_alone, tmp_path, monkeypatch):
    """AWS_PROFILE names a profile of the shared credentials file, as for the AWS CLI: the
    landing (obstore, through boto3) and delta-rs both sign with its key."""
    server = s3_alone
    (tmp_path / "credentials").write_text("[lake]\naws_access_key_id = profile-key\naws_secret_access_key = p-secret\n")
    (tmp_path / "config").write_text("[profile lake]\nregion = eu-west-1\n")
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    uri = server.upload(tmp_path / "t", f"{server.new_location()}/t")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    catalog = make_catalog("duckdb", tmp_path, "c")
    with FaultProxy(server.base) as proxy:
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
        monkeypatch.setenv("AWS_PROFILE", "lake")
        # never reach for instance metadata, whatever happens: nothing leaves this machine
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.setenv("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
        for command in (["migrate", uri], ["validate", "t"]):
            result = invoke_cli(catalog, *command, f"--storage-option=AWS_ENDPOINT_URL={proxy.endpoint}",
                                "--storage-option=AWS_ALLOW_HTTP=true")
            assert result.exit_code == 0, result.output
    assert proxy.authorizations and all("Credential=profile-key/" in a for a in proxy.authorizations)


def test_a_manifest_of_local_and_object_store_tables(server, tmp_path):
    """A manifest entry may be a URI with its own storage options, beside a local path; no
    --storage-option is given, so only the entry's options can reach the store."""
    DELTALAKE_FIXTURES["appends"](tmp_path / "local")
    DELTALAKE_FIXTURES["partitioned"](tmp_path / "remote")
    uri = server.upload(tmp_path / "remote", f"{server.new_location()}/remote")
    options = "\n".join(f"      {key}: '{value}'" for key, value in server.options().items())
    (tmp_path / "tables.yml").write_text(
        f"tables:\n  - path: local\n  - path: {uri}\n    name: orders\n    storage_options:\n{options}\n")
    catalog = make_catalog("duckdb", tmp_path, "fleet")
    result = invoke_cli(catalog, "migrate", "--manifest", str(tmp_path / "tables.yml"), "--parallel", "2")
    assert result.exit_code == 0, result.output
    with catalog.connect() as con:
        assert dict(con.execute("select table_name, table_uri from delta_log_tables").fetchall()) == {
            "local": str((tmp_path / "local").resolve()), "orders": uri}


def test_plan_and_catch_up_as_from_local_disk(server, tmp_path):
    """`plan` says the same of the table in the store as of the local one (but where it is, the
    store's round trips and the checkpoint's download), and a catch-up of new versions gives the catalog a local catch-up
    gives."""
    local_table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](local_table)
    uri = server.upload(local_table, f"{server.new_location()}/t")
    catalogs = {side: make_catalog("duckdb", tmp_path, side) for side in ("local", "store")}
    locations = {"local": str(local_table), "store": uri}
    options = [f"--storage-option={k}={v}" for k, v in server.options().items()]

    elapsed = {}

    def plan(side: str) -> dict:
        started = time.perf_counter()
        result = invoke_cli(catalogs[side], "plan", locations[side], *options)
        elapsed[side] = time.perf_counter() - started
        assert result.exit_code == 0, result.output
        [event] = [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "plan"]
        work = event.pop("work")
        latency = work.pop("round_trip_seconds")
        trips = work.pop("store_round_trips")
        download = work.pop("checkpoint_download_seconds")
        if side == "local":
            assert (trips, latency, download) == (0, 0.0, 0.0)
        else:  # a round of 64 GETs and a listing page per 1,000 commits, at the latency HEADs measured;
            # the checkpoint's download as planning timed it, within the whole command's time
            commits = event["commit_files"]
            assert trips == -(-commits // 64) + -(-commits // 1000) and latency > 0
            assert (0 < download < elapsed[side]) if event["checkpoint_files"] else download == 0
        return {k: v for k, v in event.items() if k not in ("ts", "message", "table_root")} | {"work": work}

    assert plan("store") == plan("local")
    for side in catalogs:  # first at version 22, then caught up to 24
        result = invoke_cli(catalogs[side], "migrate", locations[side], "--version", "22", "--name", "t", *options)
        assert result.exit_code == 0, result.output
    assert plan("store") == plan("local")  # a catch-up of 23..24
    for side in catalogs:
        result = invoke_cli(catalogs[side], "migrate", locations[side], "--name", "t", *options)
        assert result.exit_code == 0, result.output
    with catalogs["local"].connect() as a, catalogs["store"].connect() as b:
        assert table_fingerprints(a, "t", IGNORED) == table_fingerprints(b, "t", IGNORED)
        assert b.execute("select latest_version from delta_log_tables").fetchone() == (24,)


def test_assess_finds_the_tables_below_a_prefix_and_says_what_it_says_of_them_on_disk(server, tmp_path):
    """`assess --recursive` lists folders with a delimiter down to each `_delta_log/`, and reports
    each table as it does from local disk (a V2 checkpoint with sidecars, a multi-part one, .crc
    files, a stale hint)."""
    tables = {"sales/orders": HANDWRITTEN_FIXTURES["v2_checkpoint_sidecars"],
              "sales/items": HANDWRITTEN_FIXTURES["multipart_checkpoint"],
              "hr/people": HANDWRITTEN_FIXTURES["crc_files"],
              "stale": SURVIVABLE_FIXTURES["stale_last_checkpoint"][0]}
    lake = f"{server.new_location()}/lake"
    for relative, build in tables.items():
        build(tmp_path / relative)
        server.upload(tmp_path / relative, f"{lake}/{relative}")
    options = [f"--storage-option={k}={v}" for k, v in server.options().items()]
    runner = CliRunner()
    remote = runner.invoke(main, ["assess", lake, "--recursive", "--json", *options])
    local = runner.invoke(main, ["assess", str(tmp_path), "--recursive", "--json"])
    assert remote.exit_code == 0 and local.exit_code == 0, remote.output + local.output

    def assessments(output: str) -> dict[str, dict]:
        events = [json.loads(line) for line in output.splitlines()]
        return {e["name"]: {k: v for k, v in e.items() if k not in ("uri", "ts", "message")}
                for e in events if e["event"] == "assessment"}

    assert sorted(assessments(remote.output)) == ["items", "orders", "people", "stale"]
    assert assessments(remote.output) == assessments(local.output)
    assert server.options()[server.secret_key] not in remote.output


def test_assess_reads_a_checkpoint_in_place_by_its_footer(server, tmp_path):
    """In an object store `assess` judges the checkpoint by its footer and reads its protocol and
    metaData columns by ranged GETs: a small share of its bytes crosses the wire, and it says of the table what it says of the local copy."""
    table = write_table(tmp_path / "big", Shape("big", 20_000, 1, 1, 0, True))
    [checkpoint] = (table / "_delta_log").glob("*.checkpoint.parquet")
    uri = server.upload(table, f"{server.new_location()}/big")
    with FaultProxy(server.base) as proxy:
        options = [f"--storage-option={k}={v}" for k, v in server.options(via=proxy.endpoint).items()]
        remote = CliRunner().invoke(main, ["assess", uri, "--json", *options])
    local = CliRunner().invoke(main, ["assess", str(table), "--json"])
    assert remote.exit_code == 0 and local.exit_code == 0, remote.output + local.output
    # 72 KB here, of a 5.1 MB checkpoint: pyarrow's speculative 64 KB footer read, the hint, commit 1
    assert proxy.bytes_sent < checkpoint.stat().st_size / 20, (proxy.bytes_sent, checkpoint.stat().st_size)

    def assessment(output: str) -> dict:
        [event] = [e for e in map(json.loads, output.splitlines()) if e["event"] == "assessment"]
        return {k: v for k, v in event.items() if k not in ("uri", "ts", "message")}

    assert assessment(remote.output) == assessment(local.output)
    assert assessment(local.output)["checkpoint_actions"] == 20_003  # the adds, protocol, metaData, commit 1's add
    write_calibration("duckdb", process_seconds=1.0)  # with an estimate, it says what it left out
    timed = CliRunner().invoke(main, ["assess", uri, "--json",
                                      *[f"--storage-option={k}={v}" for k, v in server.options().items()]])
    assert any("checkpoint's download" in a and "is not counted" in a
               for a in assessment(timed.output)["estimate"]["assumptions"]), timed.output
    [fleet] = [e for e in map(json.loads, timed.output.splitlines()) if e["event"] == "assessment_finished"]
    assert fleet["downloads_not_estimated"] == ["big"] and "without the checkpoint downloads" in fleet["message"]


def test_a_checkpoint_removed_while_assess_reads_it_blocks_the_table(server, tmp_path):
    """A checkpoint that is gone after its footer was read was removed meanwhile: `assess` says
    so, as `migrate` would fail, instead of falling back to an older checkpoint and calling the
    table ready."""
    table = write_table(tmp_path / "t", Shape("t", 2_000, 1, 1, 0, True))
    uri = server.upload(table, f"{server.new_location()}/t")
    reads = []

    def gone_after_the_first_read(number, method, path):
        if method == "GET" and ".checkpoint.parquet" in path:
            reads.append(number)
            return 404 if len(reads) > 1 else None
        return None

    with FaultProxy(server.base, gone_after_the_first_read) as proxy:
        options = [f"--storage-option={k}={v}" for k, v in server.options(via=proxy.endpoint).items()]
        result = CliRunner().invoke(main, ["assess", uri, "--json", *options])
    [event] = [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "assessment"]
    assert len(reads) > 1 and result.exit_code == 1, result.output
    assert event["status"] == "blocked" and "gone when read" in " ".join(event["blockers"]), event
