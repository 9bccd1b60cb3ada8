"""`delta2sql report`: the HTML page as a real headless browser renders it, and the Markdown,
carry the catalog's own figures (queried here independently): runs, every check of the latest
validation, drift, and the live files at the latest version."""

from __future__ import annotations

import json
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ENGINES, IN_CI, RecordingReporter, invoke_cli, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import report as report_module
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import validate_tables

CHROMIUM = Path("/usr/bin/chromium")
NAME = "o'pt <i>\"é\" & co"  # markup, quotes and unicode must reach the page as text
WINDOW = (1200, 2400)


@pytest.fixture(scope="module", params=ENGINES)
def reviewed(request, tmp_path_factory):
    """The optimize fixture (8 appends, then 2 compactions) migrated in two runs, to version 5 and
    then caught up, and validated after each: the report must show the latest validation only."""
    workdir = tmp_path_factory.mktemp("report")
    root = workdir / 'dir <x> "q" é' / "opt"
    DELTALAKE_FIXTURES["optimize"](root)
    catalog = make_catalog(request.param, workdir, f"report_{request.param}")
    reporter = RecordingReporter()
    for version in (5, None):
        [outcome] = migrate_tables([TableSpec(root, NAME, version)], catalog, reporter)
        assert outcome.status == "migrated", outcome.error
        validate_tables(catalog, reporter, [NAME])
    return catalog, root


def catalog_facts(catalog) -> dict:
    """What the catalog says, asked directly: the report's code is not involved."""
    with catalog.connect() as con:
        [latest] = con.execute("select latest_version from delta_tables where table_name = ?", [NAME]).fetchone()
        [runs] = con.execute("select count(*) from migration_runs where table_name = ?", [NAME]).fetchone()
        checks = dict(con.execute(
            "select check_name, status from validation_results where table_name = ? and checked_at = "
            "(select max(checked_at) from validation_results where table_name = ?)", [NAME, NAME]).fetchall())
        [validations] = con.execute("select count(distinct checked_at) from validation_results where table_name = ?",
                                    [NAME]).fetchone()
        [live] = con.execute(
            "select count(*) from delta_files where table_name = ? and added_version <= ? "
            "and (removed_version is null or removed_version > ?)", [NAME, latest, latest]).fetchone()
    return {"latest": latest, "runs": runs, "checks": checks, "validations": validations, "live": live}


def live_at(catalog, version: int) -> int:
    with catalog.connect() as con:
        return con.execute("select count(*) from delta_files where table_name = ? and added_version <= ? "
                           "and (removed_version is null or removed_version > ?)",
                           [NAME, version, version]).fetchone()[0]


def browser() -> Path:
    """Chromium is mandatory in CI (.ci/run installs it): a failure there, a skip elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (Debian package chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def browse(page: Path, profile: Path, *args: str) -> str:
    """Load `page` in headless chromium, offline and without a first-run setup; its stdout."""
    done = subprocess.run(
        [str(browser()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """The elements of a serialized DOM, each with its attributes, children and text content."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "children": [], "text": ""}
        if self._open:
            self._open[-1]["children"].append(element)
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def by_id(self, element_id: str) -> dict:
        [element] = [e for e in self.elements if e["attrs"].get("id") == element_id]
        return element

    def having(self, attribute: str, within: dict | None = None) -> list[dict]:
        pool = self.elements if within is None else _descendants(within)
        return [e for e in pool if attribute in e["attrs"]]


def _descendants(element: dict) -> list[dict]:
    return [d for child in element["children"] for d in (child, *_descendants(child))]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_html_report_renders_the_catalog_figures(reviewed, tmp_path):
    catalog, root = reviewed
    page = tmp_path / "report.html"
    result = invoke_cli(catalog, "report", NAME, "--format", "html", "-o", str(page))
    assert result.exit_code == 0, result.output
    [written] = [json.loads(line) for line in result.output.splitlines() if '"report_written"' in line]
    assert (written["path"], written["format"]) == (str(page), "html")

    dom = Dom(browse(page, tmp_path / "profile", "--dump-dom"))
    shot = tmp_path / "report.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}")
    assert png_size(shot) == WINDOW  # the page was laid out and painted

    facts = catalog_facts(catalog)
    assert facts["runs"] == 2 and facts["validations"] == 2  # the scenario itself
    assert dom.by_id("table-name")["text"] == NAME and not [e for e in dom.elements if e["tag"] == "i"]
    assert dom.by_id("table-uri")["text"] == str(root.resolve())

    runs = dom.by_id("run-count")
    assert runs["text"] == runs["attrs"]["data-value"] == str(facts["runs"])
    assert len(dom.having("data-run-id")) == facts["runs"]

    rows = dom.having("data-check")
    shown = {row["attrs"]["data-check"]: row["attrs"]["data-status"] for row in rows}
    assert shown == facts["checks"] and len(rows) == len(facts["checks"])
    for row in rows:  # the status a reader sees, not only the attribute
        [badge] = [e for e in _descendants(row) if "status" in e["attrs"].get("class", "").split()]
        assert badge["text"] == facts["checks"][row["attrs"]["data-check"]]

    live = dom.by_id("live-files-latest")
    assert (int(live["attrs"]["data-version"]), int(live["attrs"]["data-value"])) == (facts["latest"], facts["live"])
    assert live["text"] == f"{facts['live']:,} at version {facts['latest']}"
    points = dom.having("data-live-files", within=dom.by_id("chart"))
    assert [int(p["attrs"]["data-version"]) for p in points] == list(range(facts["latest"] + 1))
    assert int(points[-1]["attrs"]["data-live-files"]) == facts["live"]
    assert [int(p["attrs"]["data-live-files"]) for p in points[::4]] == [live_at(catalog, v) for v in (0, 4, 8)]

    assert dom.by_id("drift")["attrs"]["data-state"] == "none"
    # self-contained: nothing to fetch
    assert not [e for e in dom.elements if e["tag"] in ("script", "link", "img", "iframe")]
    assert not dom.having("src") and not dom.having("href")


def test_markdown_report_holds_the_catalog_figures(reviewed, tmp_path):
    catalog, root = reviewed
    result = invoke_cli(catalog, "report", NAME)  # --json, no -o: the document travels in the event
    assert result.exit_code == 0, result.output
    [event] = [json.loads(line) for line in result.output.splitlines()]
    assert (event["event"], event["format"], event["path"]) == ("report_written", "md", None)
    text = event["document"]
    lines = text.splitlines()

    facts = catalog_facts(catalog)
    assert lines[0] == "# Migration report: o'pt &lt;i&gt;\"é\" & co"
    assert "Source: " + str(root.resolve()).replace("<", "&lt;").replace(">", "&gt;") in lines
    for section in ("## Runs", "## Validation", "## Drift", "## Live files by version"):
        assert section in lines
    assert sum(line.startswith("### Run ") for line in lines) == facts["runs"]
    assert f"| migration runs | {facts['runs']} |" in lines
    for check, status in facts["checks"].items():
        assert sum(f"| {check} | {status} |" in line for line in lines) == 1
    assert f"| live files at latest version | {facts['live']:,} at version {facts['latest']} |" in lines
    drift = lines[lines.index("## Drift") + 2]
    assert drift.startswith("no drift"), drift


def test_many_versions_are_sampled_with_the_latest_kept(reviewed, monkeypatch):
    catalog, _ = reviewed
    monkeypatch.setattr(report_module, "MAX_POINTS", 4)
    report = report_module.gather_report(catalog, NAME)
    latest = catalog_facts(catalog)["latest"]
    assert [v for v, _, _ in report.points] == [0, 3, 6, 9] == [*range(0, latest + 1, 3)]
    assert [n for _, _, n in report.points] == [live_at(catalog, v) for v in (0, 3, 6, 9)]


def test_report_on_a_table_behind_its_log_and_never_validated(tmp_path):
    root = tmp_path / "appends"
    DELTALAKE_FIXTURES["appends"](root)  # versions 0..3
    catalog = make_catalog("duckdb", tmp_path, "behind")
    [outcome] = migrate_tables([TableSpec(root, "appends", 1)], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error

    report = report_module.gather_report(catalog, "appends")
    assert report.validation is None
    assert report.drift["state"] == "drift" and [f["kind"] for f in report.drift["findings"]] == ["behind"]
    text = report_module.render_report(report, "md")
    assert "never validated" in text and "- behind: " in text

    result = invoke_cli(catalog, "report", "nope")
    assert result.exit_code == 1 and "nope" in result.output
