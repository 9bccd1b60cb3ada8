"""Measure the object-store clients considered for reading `_delta_log` (ADR 0006), side by side
in one run against moto's S3 server on 127.0.0.1: N small commit objects fetched by

- obstore, as delta2sql does (log_store.ObjectStoreLog.fetch: --io-concurrency at a time);
- obstore one object after the other;
- fsspec/s3fs `cat` of all paths (its own asyncio batching);
- DuckDB `read_text` over the s3fs filesystem registered with `duckdb.register_filesystem`
  (httpfs, DuckDB's own S3 reader, is an extension that cannot be downloaded here).

Usage: .venv/bin/python scripts/bench_object_store_clients.py [--objects 2000] [--runs 3]
Needs moto[server] and s3fs (not a project dependency: see ADR 0006 for why).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import duckdb
import obstore

from delta2sql.log_store import ObjectStoreLog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/lake", method="PUT")).close()
        options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
        uri = "s3://lake/t"
        log = ObjectStoreLog(uri, options)
        line = json.dumps({"add": {"path": "x" * 40 + ".parquet", "size": 1, "stats": "{" + "1" * 600 + "}"}})
        names = [f"{v:020d}.json" for v in range(args.objects)]
        for name in names:
            obstore.put(log.store, f"_delta_log/{name}", (line + "\n").encode())
        listed = log.list()
        results = {}

        def timed(label, body):
            seconds = []
            for _ in range(args.runs):
                started = time.perf_counter()
                body()
                seconds.append(time.perf_counter() - started)
            results[label] = seconds

        def obstore_concurrent():
            fresh = ObjectStoreLog(uri, options)
            fresh.fetch(listed)
            fresh.close()

        def obstore_sequential():
            for name in names:
                obstore.get(log.store, f"_delta_log/{name}").bytes()

        import s3fs

        fs = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"})
        paths = [f"lake/t/_delta_log/{n}" for n in names]

        def s3fs_cat():
            fs.invalidate_cache()
            fs.cat(paths)

        def duckdb_over_s3fs():
            con = duckdb.connect()
            con.register_filesystem(fs)
            con.execute("select count(*) from read_text($files)", {"files": [f"s3://{p}" for p in paths]}).fetchall()
            con.close()

        timed("obstore, 16 at a time (delta2sql)", obstore_concurrent)
        timed("obstore, one at a time", obstore_sequential)
        timed("s3fs cat (asyncio batch)", s3fs_cat)
        timed("DuckDB read_text over s3fs", duckdb_over_s3fs)
        log.close()
        base = statistics.median(results["obstore, 16 at a time (delta2sql)"])
        print(f"{args.objects} objects of {len(line) + 1} bytes, {args.runs} runs each, moto on 127.0.0.1")
        print(f"{'client':40} {'min s':>8} {'median s':>9} {'max s':>8} {'× obstore':>10}")
        for label, seconds in results.items():
            median = statistics.median(seconds)
            print(f"{label:40} {min(seconds):8.2f} {median:9.2f} {max(seconds):8.2f} {median / base:10.1f}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
