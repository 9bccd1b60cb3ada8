"""`delta2sql report TABLE`: one self-contained document a team reviews before it cuts a table over.

It gathers what the catalog already records (the table, its runs and batches, its latest
validation, the life of its files) and what `detect_drift` sees in the `_delta_log` now, then
renders Markdown or HTML. The HTML carries its CSS and an SVG chart inline and loads nothing, so
it can be attached to a ticket or opened offline; every value is escaped, as table names and
paths may hold quotes, `<` or unicode. Elements carry ids and data attributes so a browser test
can read the rendered page.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field

from delta2sql.catalog import Catalog
from delta2sql.catalog_state import require_table
from delta2sql.drift import detect_drift
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import load_sql

FORMATS = ("md", "html")
MAX_POINTS = 500  # chart points at most: versions are sampled evenly beyond this
MAX_ROWS = 20  # batches listed per run (its totals cover all), versions listed in Markdown

@dataclass
class Report:
    table: dict
    catalog: str
    generated_at: dt.datetime
    runs: list[dict] = field(default_factory=list)
    validation: dict | None = None  # the latest `validate`: its version, levels and checks
    drift: dict = field(default_factory=dict)
    points: list[tuple[int, dt.datetime | None, int]] = field(default_factory=list)  # (version, time, live files)
    sampled_every: int = 1

    @property
    def latest_point(self) -> tuple[int, dt.datetime | None, int] | None:
        return self.points[-1] if self.points else None


def _when(value) -> dt.datetime | None:
    """Timestamps come back as datetime (DuckDB, PostgreSQL) or ISO text (SQLite)."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _dicts(cursor) -> list[dict]:
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def gather_report(catalog: Catalog, table_name: str) -> Report:
    """What the report shows of `table_name`, in any state (a half-made one too); the catalog
    must exist (delta2sql.catalog_state.check_catalog)."""
    require_table(catalog, table_name, built=False)
    with catalog.connect() as con:
        found = _dicts(con.execute("select * from delta_log_tables where table_name = ?", [table_name]))
        report = Report(found[0], catalog.description, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
        report.runs = _runs(con, table_name)
        if con.relation_exists("validation_results"):
            report.validation = _latest_validation(con, table_name)
        if con.relation_exists("delta_commits") and con.relation_exists("delta_files"):
            report.points, report.sampled_every = _live_files(con, table_name)
    try:
        found_drift = detect_drift(catalog, table_name)
        report.drift = {"state": "drift" if found_drift.findings else "none", "findings": found_drift.findings,
                        "catalog_version": found_drift.catalog_version, "log_version": found_drift.log_version}
    except (Delta2SqlError, OSError) as exc:  # not migrated yet, or the log cannot be read at all
        report.drift = {"state": "unavailable", "findings": [], "reason": str(exc)}
    return report


def _runs(con, table_name: str) -> list[dict]:
    runs = _dicts(con.execute(
        "select * from migration_runs where table_name = ? order by started_at, run_id", [table_name]))
    for run in runs:
        for column in ("started_at", "landed_at", "finished_at", "heartbeat_at", "lease_expires_at"):
            run[column] = _when(run[column])
        run["batches"] = _dicts(con.execute(
            "select batch_number, first_version, last_version, log_files, files, actions, bytes, committed_at "
            "from migration_batches where run_id = ? order by batch_number", [run["run_id"]]))
    return runs


def _latest_validation(con, table_name: str) -> dict | None:
    checks = _dicts(con.execute(
        "select level, check_name, status, expected, observed, details, checked_at from validation_results "
        "where table_name = ? and checked_at = (select max(checked_at) from validation_results where table_name = ?) "
        "order by case level when 'structure' then 0 when 'snapshot' then 1 else 2 end, check_name",
        [table_name, table_name]))
    if not checks:
        return None
    run = con.execute("select validated_version, levels from validation_runs where table_name = ? "
                      "order by checked_at desc limit 1", [table_name]).fetchone()
    return {"checked_at": _when(checks[0]["checked_at"]), "validated_version": run[0] if run else None,
            "levels": run[1] if run else "", "checks": checks}


def _live_files(con, table_name: str) -> tuple[list[tuple[int, dt.datetime | None, int]], int]:
    first, last = con.execute("select min(version), max(version) from delta_commits where table_name = ?",
                              [table_name]).fetchone()
    if first is None:
        return [], 1
    every = max(1, math.ceil((last - first + 1) / MAX_POINTS))
    rows = con.execute(load_sql("live_files_by_version.sql"), [table_name, table_name, table_name, first, every, last]).fetchall()
    return [(int(v), _when(t), int(n)) for v, t, n in rows], every


def render_report(report: Report, fmt: str) -> str:
    """`fmt` is one of FORMATS."""
    return render_html(report) if fmt == "html" else render_markdown(report)


# ---- shared wording ------------------------------------------------------------------------------

def _time(value: dt.datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "—"


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _run_row(number: int, run: dict) -> dict[str, str]:
    """One run as the cells both formats show, in order."""
    batches = run["batches"]
    return {
        "#": str(number),
        "mode": run["mode"],
        "status": run["status"],
        "versions": f"{run['from_version']}..{run['to_version']}",
        "started (UTC)": _time(run["started_at"]),
        "landing": _seconds(run["started_at"], run["landed_at"]),
        "build": _seconds(run["landed_at"], run["finished_at"]),
        "total": _seconds(run["started_at"], run["finished_at"]),
        "estimate": (f"{run['estimate_low_seconds']:,.0f}–{run['estimate_high_seconds']:,.0f} s"
                     if run["estimate_low_seconds"] is not None else "—"),
        "batches": f"{len(batches):,}/{run['num_batches']:,}",
        "log files": f"{sum(b['files'] for b in batches):,}",
        "actions": f"{sum(b['actions'] for b in batches):,}",
        "bytes": f"{sum(b['bytes'] for b in batches):,}",
        "error": run["error"] or "",
    }


def _batch_row(batch: dict) -> dict[str, str]:
    return {"batch": str(batch["batch_number"]), "versions": f"{batch['first_version']}..{batch['last_version']}",
            "log files": batch["log_files"], "files": f"{batch['files']:,}", "actions": f"{batch['actions']:,}",
            "bytes": f"{batch['bytes']:,}", "committed (UTC)": _time(_when(batch["committed_at"]))}


def _summary(report: Report) -> dict[str, str]:
    t = report.table
    checkpoint = f"{t['checkpoint_kind']} at version {t['checkpoint_version']}" if t["checkpoint_kind"] else "none"
    latest = report.latest_point
    return {
        "status": t["status"],
        "versions": f"{t['replay_start_version']}..{t['latest_version']} "
                    f"(catalog tables built to {t['built_version']})",
        "replay starts from checkpoint": checkpoint,
        "cut over at version": "not yet" if t["finalized_version"] is None else str(t["finalized_version"]),
        "live files at latest version": "—" if latest is None else f"{latest[2]:,} at version {latest[0]}",
        "migration runs": str(len(report.runs)),
        "latest validation": _validation_line(report.validation),
        "drift": _drift_line(report.drift),
        "catalog": report.catalog,
        "report generated (UTC)": _time(report.generated_at),
    }


def _drift_line(drift: dict) -> str:
    if drift["state"] == "unavailable":
        return f"not checked: {drift['reason']}"
    where = f"catalog at version {drift['catalog_version']}, log at version {drift['log_version']}"
    return f"no drift ({where})" if drift["state"] == "none" else f"{len(drift['findings'])} finding(s) ({where})"


def _validation_line(validation: dict | None) -> str:
    if validation is None:
        return "never validated"
    counts: dict[str, int] = {}
    for check in validation["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{tally}; validated at version {validation['validated_version']} "
            f"(levels {validation['levels']}) on {_time(validation['checked_at'])} UTC")


# ---- Markdown ------------------------------------------------------------------------------------

def _md(value) -> str:
    """A table cell: pipes and newlines would break the row, `<` would become markup."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split("\n"))


def _md_table(rows: list[dict[str, str]]) -> list[str]:
    columns = list(rows[0])
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(_md(r[c]) for c in columns) + " |" for r in rows)]


def _sparkline(values: list[int]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    top = max(values, default=0) or 1
    return "".join(bars[min(len(bars) - 1, v * (len(bars) - 1) // top)] for v in values)


def render_markdown(report: Report) -> str:
    t = report.table
    lines = [f"# Migration report: {_md(t['table_name'])}", "", f"Source: {_md(t['table_uri'])}", "",
             *_md_table([{"fact": k, "value": v} for k, v in _summary(report).items()]), "", "## Runs", ""]
    if not report.runs:
        lines += ["No migration run recorded.", ""]
    for number, run in enumerate(report.runs, 1):
        lines += [f"### Run {number} ({_md(run['run_id'])})", "", *_md_table([_run_row(number, run)]), ""]
        if run["batches"]:
            shown = run["batches"][:MAX_ROWS]
            lines += [*_md_table([_batch_row(b) for b in shown]), ""]
            if len(run["batches"]) > len(shown):
                lines += [f"… and {len(run['batches']) - len(shown):,} more batches.", ""]
    lines += ["## Validation", "", _validation_line(report.validation), ""]
    if report.validation:
        lines += [*_md_table([{"level": c["level"], "check": c["check_name"], "status": c["status"],
                               "expected": c["expected"] or "", "observed": c["observed"] or "",
                               "details": c["details"] or ""} for c in report.validation["checks"]]), ""]
    lines += ["## Drift", "", _md(_drift_line(report.drift)), ""]
    if report.drift["findings"]:
        lines += [*(f"- {_md(f['kind'])}: {_md(f['detail'])}" for f in report.drift["findings"]), ""]
    lines += ["## Live files by version", ""]
    if report.points:
        lines += [f"`{_sparkline([n for _, _, n in report.points])}` "
                  f"(versions {report.points[0][0]}..{report.points[-1][0]}"
                  + (f", every {report.sampled_every} versions" if report.sampled_every > 1 else "") + ")", ""]
        rows = min(len(report.points), MAX_ROWS)  # evenly spread, first and last included
        shown = [report.points[i] for i in sorted({round(k * (len(report.points) - 1) / max(1, rows - 1))
                                                   for k in range(rows)})]
        lines += _md_table([{"version": str(v), "committed (UTC)": _time(when), "live files": f"{n:,}"}
                            for v, when, n in shown])
    else:
        lines += ["The catalog tables are not built yet."]
    return "\n".join(lines) + "\n"


# ---- HTML ----------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2430; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d8dee8; }
code { font-family: ui-monospace, monospace; font-size: 12.5px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6eaf0; vertical-align: top; }
.long { font: 12px ui-monospace, monospace; min-width: 10rem; max-height: 9em; overflow: auto; white-space: pre-wrap;
        overflow-wrap: anywhere; }
th { background: #f3f5f8; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { width: 16rem; background: none; color: #566070; }
.status { font-weight: 600; border-radius: 3px; padding: .05rem .4rem; white-space: nowrap; }
.pass, .migrated, .finalized, .none { background: #dff3e4; color: #1b6b34; }
.warn, .skip, .landing, .landed, .running { background: #fff3cd; color: #7a5a00; }
.fail, .error, .failed, .drift, .abandoned, .unavailable { background: #fbe0e0; color: #9b1c1c; }
details { margin: .3rem 0 1rem; } summary { cursor: pointer; color: #566070; }
svg text { font: 11px system-ui, sans-serif; fill: #566070; }
"""


DRIFT_BADGES = {"none": "ok", "drift": "drift", "unavailable": "not checked"}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


LONG_COLUMNS = ("expected", "observed", "details", "error")  # whole log lines or row dumps: scroll, not stretch


def _html_table(rows: list[dict[str, str]], numeric=(), row_attrs=None) -> str:
    """Rows of cells; a `status` column is shown as a coloured badge."""
    columns = list(rows[0])
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td><span class="status {_e(row[c])}">{_e(row[c])}</span></td>' if c == "status"
            else f'<td class="num">{_e(row[c])}</td>' if c in numeric
            else f'<td><div class="long">{_e(row[c])}</div></td>' if c in LONG_COLUMNS and row[c]
            else f"<td>{_e(row[c])}</td>"
            for c in columns)
        body.append(f"<tr{row_attrs(i) if row_attrs else ''}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report) -> str:
    t = report.table
    latest = report.latest_point
    # the figures a reviewer (and the browser test) looks up carry ids and their raw values
    marks = {"status": ' id="table-status"', "migration runs": f' id="run-count" data-value="{len(report.runs)}"'}
    if latest is not None:
        marks["live files at latest version"] = (f' id="live-files-latest" data-version="{latest[0]}" '
                                                 f'data-value="{latest[2]}"')
    facts = "".join(f"<tr><th>{_e(k)}</th><td{marks.get(k, '')}>{_e(v)}</td></tr>" for k, v in _summary(report).items())
    parts = [
        f"<h1>Migration report: <span id=\"table-name\">{_e(t['table_name'])}</span></h1>",
        f"<p>Source: <code id=\"table-uri\">{_e(t['table_uri'])}</code></p>",
        f"<table class=\"facts\">{facts}</table>",
        "<h2>Runs</h2>",
    ]
    if not report.runs:
        parts.append("<p>No migration run recorded.</p>")
    for number, run in enumerate(report.runs, 1):
        parts.append(f"<h3>Run {number} <code>{_e(run['run_id'])}</code></h3>")
        parts.append(_html_table([_run_row(number, run)], numeric=("batches", "log files", "actions", "bytes"),
                                 row_attrs=lambda _, r=run: f' class="run" data-run-id="{_e(r["run_id"])}"'))
        if run["batches"]:
            shown = run["batches"][:MAX_ROWS]
            more = len(run["batches"]) - len(shown)
            parts.append(f"<details><summary>{len(run['batches']):,} committed batches"
                         + (f" (first {len(shown)} shown)" if more else "") + "</summary>"
                         + _html_table([_batch_row(b) for b in shown], numeric=("files", "actions", "bytes"))
                         + "</details>")
    validation = report.validation
    parts += ["<h2>Validation</h2>", f"<p id=\"validation-summary\">{_e(_validation_line(validation))}</p>"]
    if validation:
        checks = validation["checks"]
        parts.append(_html_table(
            [{"level": c["level"], "check": c["check_name"], "status": c["status"], "expected": c["expected"] or "",
              "observed": c["observed"] or "", "details": c["details"] or ""} for c in checks],
            row_attrs=lambda i: f' class="check" data-check="{_e(checks[i]["check_name"])}" '
                                f'data-status="{_e(checks[i]["status"])}"'))
    drift = report.drift
    findings = "".join(f"<li data-kind=\"{_e(f['kind'])}\"><b>{_e(f['kind'])}</b>: {_e(f['detail'])}</li>"
                       for f in drift["findings"])
    parts += ["<h2>Drift</h2>",
              f"<p id=\"drift\" data-state=\"{_e(drift['state'])}\"><span class=\"status {_e(drift['state'])}\">"
              f"{DRIFT_BADGES[drift['state']]}</span> {_e(_drift_line(drift))}</p>",
              f"<ul>{findings}</ul>" if findings else "",
              "<h2>Live files by version</h2>", _chart(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>delta2sql report: {_e(t['table_name'])}</title><style>{CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def _chart(report: Report) -> str:
    """Two panels over the same version axis: live files (a step line), and commit time, whose
    slope shows the commit cadence. Runs are marked where they published their version."""
    points = report.points
    if not points:
        return "<p>The catalog tables are not built yet.</p>"
    width, left, right = 1000, 70, 20
    top_h, gap, time_h, top = 220, 46, 90, 16
    first, last = points[0][0], points[-1][0]

    def x(version: int) -> float:
        return left + (0.5 if first == last else (version - first) / (last - first)) * (width - left - right)

    most = max(n for _, _, n in points) or 1

    def y(live: int) -> float:
        return top + top_h - live / most * top_h

    svg = [f'<svg id="chart" viewBox="0 0 {width} {top + top_h + gap + time_h + 30}" width="100%" role="img" '
           f'aria-label="live files and commit time by version" xmlns="http://www.w3.org/2000/svg">']
    for fraction in (0, 0.5, 1):  # live-file gridlines
        value = round(most * fraction)
        svg.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e6eaf0"/>'
                   f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,}</text>')
    svg.append(f'<text x="{left}" y="{top - 4}">live files</text>')
    step = f"M{x(first):.1f},{y(points[0][2]):.1f}" + "".join(
        f"H{x(v):.1f}V{y(n):.1f}" for v, _, n in points[1:])
    svg.append(f'<path d="{step}V{y(0):.1f}H{x(first):.1f}Z" fill="#cfe0f7" stroke="none"/>'
               f'<path d="{step}" fill="none" stroke="#2f6fbf" stroke-width="2"/>')
    svg.append('<g id="chart-points">' + "".join(
        f'<circle cx="{x(v):.1f}" cy="{y(n):.1f}" r="2.5" fill="#2f6fbf" data-version="{v}" data-live-files="{n}">'
        f"<title>version {v}: {n:,} live files, committed {_e(_time(when))}</title></circle>"
        for v, when, n in points) + "</g>")
    for number, run in enumerate(report.runs, 1):
        if first <= run["to_version"] <= last:
            rx = x(run["to_version"])
            label = f'x="{rx - 3:.1f}" text-anchor="end"' if rx > width / 2 else f'x="{rx + 3:.1f}"'
            svg.append(f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{top}" y2="{top + top_h}" stroke="#9aa5b5" '
                       f'stroke-dasharray="4 3"/>'
                       f'<text {label} y="{top + top_h - 6 - 12 * (number - 1)}">run {number}</text>')
    svg.append(_time_panel(points, x, top + top_h + gap, time_h, left, width - right))
    ticks = (range(first, last + 1) if last - first <= 12
             else sorted({first, last, *(round(first + (last - first) * i / 6) for i in range(1, 6))}))
    axis_y = top + top_h + gap + time_h
    svg += [f'<text x="{x(v):.1f}" y="{axis_y + 16}" text-anchor="middle">{v}</text>' for v in ticks]
    svg.append(f'<text x="{(left + width - right) / 2}" y="{axis_y + 30}" text-anchor="middle">version'
               + (f" (every {report.sampled_every} versions shown)" if report.sampled_every > 1 else "") + "</text>")
    return "".join(svg) + "</svg>"


def _time_panel(points, x, top: int, height: int, left: int, right: int) -> str:
    timed = [(v, when) for v, when, _ in points if when is not None]
    if not timed:
        return ""
    start, end = min(w for _, w in timed), max(w for _, w in timed)
    span = (end - start).total_seconds() or 1
    precision = "milliseconds" if span < 60 else "seconds"  # quick writers commit many versions a second

    def y(when: dt.datetime) -> float:
        return top + height - (when - start).total_seconds() / span * height

    line = " ".join(f"{x(v):.1f},{y(w):.1f}" for v, w in timed)
    return (f'<text x="{left}" y="{top - 6}">commit time (UTC)</text>'
            f'<line x1="{left}" x2="{right}" y1="{top + height}" y2="{top + height}" stroke="#e6eaf0"/>'
            f'<line x1="{left}" x2="{right}" y1="{top}" y2="{top}" stroke="#e6eaf0"/>'
            f'<text x="{left + 4}" y="{top + 12}">{end.isoformat(sep=" ", timespec=precision)}</text>'
            f'<text x="{right - 4}" y="{top + height - 4}" text-anchor="end">'
            f'{start.isoformat(sep=" ", timespec=precision)}</text>'
            f'<polyline points="{line}" fill="none" stroke="#7a5ab8" stroke-width="1.5"/>')
