"""Object-store rows of the benchmark (issue 13): the long and wide tables served by moto's S3
server on 127.0.0.1, directly and through a proxy that adds a round-trip latency, beside the
same table on local disk and delta-rs reading the same URI, in one run.

    .venv/bin/python scripts/bench_object_store.py                       # long and wide, scale 0.1, 20 ms
    .venv/bin/python scripts/bench_object_store.py --scale 1 --latency-ms 20 --io-concurrency 64

Each run is a separate process (wall time and peak RSS from wait4, as scripts/bench.py). The
proxy (tests/python/object_stores.FaultProxy) counts the requests by kind and the bytes it
passed; a GET of a path already fetched in the same run counts as a repeat (a retry or a
second read). Prints a Markdown table and writes bench-out/object_store.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "python"))

import obstore
from bench import BIN, DELTA_RS_LOAD, measure
from object_stores import FaultProxy, s3_server


def upload(server, table: Path, uri: str) -> None:
    store = server.store(uri)
    files = [p for p in table.rglob("*") if p.is_file()]
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda p: obstore.put(store, p.relative_to(table).as_posix(), p.read_bytes()), files))


def row(label: str, measured: dict, local_seconds: float, proxy: FaultProxy | None) -> dict:
    result = {"run": label, "seconds": round(measured["seconds"], 2), "peak_rss_mb": measured["peak_rss_mb"],
              "x_local": round(measured["seconds"] / local_seconds, 2)}
    if proxy is not None:
        kinds = proxy.counts()
        gets = Counter(path for method, path, _ in proxy.requests if method == "GET" and "list-type=" not in path)
        result.update({"LIST": kinds.get("LIST", 0), "GET": kinds.get("GET", 0), "HEAD": kinds.get("HEAD", 0),
                       "repeated_GET": sum(n - 1 for n in gets.values()), "MB": round(proxy.bytes_sent / 1e6, 1)})
    return result


def bench_table(kind: str, scale: float, latency: float, concurrency: int, server, workdir: Path,
                delta_rs: bool = True) -> list[dict]:
    from bench_tables import generate_long, generate_wide

    table = workdir / kind
    (generate_long if kind == "long" else generate_wide)(table, scale)
    objects = sum(1 for p in (table / "_delta_log").iterdir())
    uri = f"{server.new_location()}/{kind}"
    upload(server, table, uri)
    migrate = [str(BIN / "delta2sql"), "migrate", "--json", "--io-concurrency", str(concurrency)]
    local = measure([*migrate, str(table), "--catalog", str(workdir / f"{kind}-local.duckdb")])
    rows = [row("delta2sql, local disk", local, local["seconds"], None)]
    for label, delay in (("direct", 0.0), (f"+{latency * 1000:.0f} ms", latency)):
        with FaultProxy(server.base, delay_seconds=delay) as proxy:
            options = [f"--storage-option={k}={v}" for k, v in server.options(via=proxy.endpoint).items()]
            catalog = workdir / f"{kind}-{len(rows)}.duckdb"
            rows.append(row(f"delta2sql, S3 {label}", measure([*migrate, uri, "--catalog", str(catalog), *options]),
                            local["seconds"], proxy))
        if not delta_rs:
            continue
        with FaultProxy(server.base, delay_seconds=delay) as proxy:
            env = {k: v for k, v in server.options(via=proxy.endpoint).items()}
            rows.append(row(f"delta-rs, S3 {label}", measure([str(BIN / "python"), "-c", DELTA_RS_LOAD, uri], env),
                            local["seconds"], proxy))
    for r in rows:
        r.update({"table": kind, "scale": scale, "log_objects": objects})
    shutil.rmtree(table)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--tables", nargs="+", default=["long", "wide"])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--io-concurrency", type=int, default=64)
    parser.add_argument("--no-delta-rs", action="store_true",
                        help="leave out delta-rs (it GETs every commit twice: about 30 ms a commit here)")
    args = parser.parse_args()
    results = []
    with s3_server() as server, tempfile.TemporaryDirectory(prefix="d2s-bench-s3-") as tmp:
        for kind in args.tables:
            results += bench_table(kind, args.scale, args.latency_ms / 1000, args.io_concurrency, server, Path(tmp),
                                   not args.no_delta_rs)
    out = REPO / "bench-out"
    out.mkdir(exist_ok=True)
    (out / "object_store.json").write_text(json.dumps(results, indent=2))
    columns = ["table", "scale", "log_objects", "run", "seconds", "x_local", "peak_rss_mb", "LIST", "GET", "HEAD",
               "repeated_GET", "MB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        print("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
