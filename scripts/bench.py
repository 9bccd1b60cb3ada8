"""Benchmark delta2sql against delta-rs on generated tables, side by side in one run.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python scripts/bench.py                      # full run (scales 0.25 0.5 1 2), ~15 min
    .venv/bin/python scripts/bench.py --scales 0.25 --no-postgres   # quick look
    .venv/bin/python scripts/bench.py --scale4             # adds wide and long x4, ~25 min more
    .venv/bin/python scripts/bench.py --tables long --scales --million   # 1,000,000 commits only, ~20 min

For each table (wide, long, wide_delta_rs: a checkpoint delta-rs wrote) and scale it generates the log
(scripts/bench_tables.py), then runs,
each as a separate process whose wall time and peak RSS (wait4) are measured:
  delta-rs load (DeltaTable + get_add_actions), delta2sql migrate into DuckDB, into PostgreSQL,
  and full validation of the DuckDB catalog (every level; the snapshot at the latest version only,
  `--versions 1`, as the baseline of the performance issues was measured: `--validate-versions 4`
  is what `validate` does by default).
`--million` adds long x10 (1,000,000 JSON commits, 839 MB of log): delta-rs runs under a 16 GiB
address-space cap and what it does is recorded (it may not fit), and nothing is validated there:
validation reads the table with delta-rs at several versions.
Writes bench-out/results.json and bench-out/scaling.png, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Peak RSS comes from wait4(), and Linux carries a process's RSS high-water mark across fork and
# exec: this script therefore stays small (stdlib only) and generates and counts in children.
DELTA_RS_LOAD = (
    "import sys, deltalake, pyarrow as pa; t = deltalake.DeltaTable(sys.argv[1]); "
    "print(pa.table(t.get_add_actions()).num_rows)"
)
COUNT_ACTIONS = (
    "import sys, duckdb; log = sys.argv[1]; con = duckdb.connect(); con.execute('set enable_progress_bar = false'); "
    "rows = con.execute(\"select count(*) from read_parquet(?)\", [log + '/*.checkpoint.parquet']).fetchone()[0] "
    "if __import__('glob').glob(log + '/*.checkpoint.parquet') else 0; "
    "lines = con.execute(\"select count(*) from (select unnest(string_split(content, chr(10))) as l "
    "from read_text(?)) where l <> ''\", [log + '/*.json']).fetchone()[0]; print(rows + lines)"
)
TABLES = ("wide", "long", "wide_delta_rs")  # wide_delta_rs: needs ../shared/bench/gen_delta_log.py
MILLION_SCALE = 10.0  # long x10: 1,000,000 JSON commits
DELTA_RS_CAP = 16 << 30  # delta-rs's address space at a million commits: the machine has 24 GB


def measure(command: list[str], env: dict | None = None, allow_failure: bool = False,
            address_space: int | None = None) -> dict:
    """Run `command`; wall seconds, CPU seconds (user + system) and peak RSS (MB) of that
    process tree's largest process. With `allow_failure`, a failed run is recorded (its exit code
    and the end of its stderr) instead of raised; `address_space` caps its virtual memory."""
    # output goes to files, not pipes: a child blocked on a full pipe would never exit (--json
    # writes an event per batch)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        capped = ["prlimit", f"--as={address_space}", "--"] if address_space else []  # prlimit execs: same pid
        process = subprocess.Popen(capped + command, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    measured = {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024), "stdout": out}
    if code != 0:
        if not allow_failure:
            raise RuntimeError(f"{' '.join(command)} exited {code}:\n{out[-2000:]}\n{err[-2000:]}")
        measured["failed"] = f"exit {code}: {err.strip()[-300:]}"
    return measured


def run_case(kind: str, scale: float, workdir: Path, postgres: bool, validate_versions: int) -> dict:
    table = workdir / f"{kind}_{scale}"
    shutil.rmtree(table, ignore_errors=True)
    subprocess.run([str(BIN / "python"), str(REPO / "scripts" / "bench_tables.py"), kind, str(scale), str(table)], check=True)
    actions = int(measure([str(BIN / "python"), "-c", COUNT_ACTIONS, str(table / "_delta_log")])["stdout"])
    result = {"table": kind, "scale": scale, "actions": actions}
    million = scale >= MILLION_SCALE
    result["delta_rs"] = measure([str(BIN / "python"), "-c", DELTA_RS_LOAD, str(table)],
                                 allow_failure=million, address_space=DELTA_RS_CAP if million else None)
    catalog = workdir / f"{kind}_{scale}.duckdb"
    catalog.unlink(missing_ok=True)
    result["duckdb"] = measure([str(BIN / "delta2sql"), "migrate", str(table), "--catalog", str(catalog), "--json"])
    if postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        env = {"DELTA2SQL_PG_SCHEMA": schema}
        try:
            result["postgres"] = measure([str(BIN / "delta2sql"), "migrate", str(table), "--target", "postgres", "--json"], env)
        finally:
            subprocess.run(["psql", "-q", "-c", f"drop schema if exists {schema} cascade"], check=False,
                           env={**os.environ, "PGOPTIONS": "--client-min-messages=warning",
                                "PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
                                "PGUSER": os.environ.get("PGUSER", "postgres"),
                                "PGDATABASE": os.environ.get("PGDATABASE", "postgres")})
    if not million:
        result["validate"] = measure([str(BIN / "delta2sql"), "validate", "--catalog", str(catalog),
                                      "--versions", str(validate_versions), "--json"])
    for step in ("delta_rs", "duckdb", "postgres", "validate"):
        if step in result:
            result[step].pop("stdout")
            result[step]["actions_per_s"] = round(actions / result[step]["seconds"])
            result[step]["ratio_to_delta_rs"] = (None if "failed" in result["delta_rs"] else
                                                 round(result[step]["seconds"] / result["delta_rs"]["seconds"], 2))
    shutil.rmtree(table)
    catalog.unlink(missing_ok=True)
    return result


def print_table(results: list[dict]) -> None:
    header = f"{'table':6} {'scale':>5} {'actions':>10} | {'step':9} {'wall s':>7} {'RSS MB':>7} {'actions/s':>10} {'x delta-rs':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        for step in ("delta_rs", "duckdb", "postgres", "validate"):
            if step in r:
                s = r[step]
                print(f"{r['table']:6} {r['scale']:>5} {r['actions']:>10,} | {step:9} {s['seconds']:>7} "
                      f"{s['peak_rss_mb']:>7} {s['actions_per_s']:>10,} {_ratio(s):>10}")


def markdown_table(results: list[dict]) -> str:
    lines = ["| table | scale | actions | step | wall s | peak RSS MB | actions/s | × delta-rs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for step in ("delta_rs", "duckdb", "postgres", "validate"):
            if step in r:
                s = r[step]
                lines.append(f"| {r['table']} | {r['scale']} | {r['actions']:,} | {step} | {s['seconds']} | "
                             f"{s['peak_rss_mb']} | {s['actions_per_s']:,} | {_ratio(s)} |")
    return "\n".join(lines) + "\n"


def _ratio(step: dict) -> str:
    """× delta-rs, or why there is none (delta-rs failed: its own row says how)."""
    if "failed" in step:
        return "failed: " + step["failed"].splitlines()[0][:60]
    return "n/a" if step["ratio_to_delta_rs"] is None else str(step["ratio_to_delta_rs"])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, kind in enumerate(("wide", "long")):
        series = sorted((r for r in results if r["table"] == kind), key=lambda r: r["actions"])
        if not series:
            continue
        for step, label in (("delta_rs", "delta-rs load"), ("duckdb", "migrate → DuckDB"),
                            ("postgres", "migrate → PostgreSQL"), ("validate", "validate (DuckDB)")):
            points = [r for r in series if step in r and "failed" not in r[step]]  # the million is not validated
            if points:
                x = [r["actions"] for r in points]
                axes[row][0].plot(x, [r[step]["seconds"] for r in points], marker="o", label=label)
                axes[row][1].plot(x, [r[step]["peak_rss_mb"] for r in points], marker="o", label=label)
        axes[row][0].set(title=f"{kind}: wall time", xlabel="actions in the log", ylabel="seconds")
        axes[row][1].set(title=f"{kind}: peak RSS", xlabel="actions in the log", ylabel="MB")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="*", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--long-scales", type=float, nargs="+", default=None,
                        help="scales for the long table (default: --scales)")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--scale4", action="store_true", help="add scale 4 to the wide and long series")
    parser.add_argument("--million", action="store_true", help="add long x10: 1,000,000 JSON commits")
    parser.add_argument("--validate-versions", type=int, default=1,
                        help="versions `validate` compares (default 1, as the baselines were measured)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out")
    parser.add_argument("--workdir", type=Path, default=None, help="where tables are generated (default: <out>/work)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or args.out / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for kind in args.tables:
        scales = list(args.long_scales or args.scales) if kind == "long" else list(args.scales)
        scales += [4.0] if args.scale4 and kind in ("wide", "long") else []
        scales += [MILLION_SCALE] if args.million and kind == "long" else []
        for scale in scales:
            print(f"running {kind} x{scale} ...", file=sys.stderr, flush=True)
            results.append(run_case(kind, scale, workdir, not args.no_postgres, args.validate_versions))
            (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    (args.out / "results.md").write_text(markdown_table(results))
    plot(results, args.out / "scaling.png")
    print(f"\nwrote {args.out}/results.json, results.md and scaling.png")


if __name__ == "__main__":
    main()
