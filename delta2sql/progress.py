"""Progress and event reporting: rich bars for people, JSON lines for machines.

Long operations report through one `Reporter` so the CLI's `--json` switch changes the output
format everywhere at once, and library callers (tests) can pass a silent one.

Events carry plain text: a `message` for people and fields for programs (every event type and
field is documented in docs/json-events.md). The console reporter alone decides colours, and
where each event goes: results on stdout, progress, warnings and errors on stderr, so that
`delta2sql status > file` keeps the answer and drops the bars.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# events whose message is the command's answer (stdout); anything else is commentary (stderr)
RESULT_EVENTS = {"migration_finished", "plan", "assessment", "assessment_finished", "drift", "drift_finished",
                 "validation_finished", "finalized", "rolled_back", "written_back", "report_written"}
STATUS_STYLES = {"migrated": "green", "failed": "red", "ready": "green", "blocked": "red", "pass": "green",
                 "warn": "yellow", "skip": "cyan", "fail": "red", "error": "magenta"}


class Reporter:
    """Silent reporter; the base of the human and JSON ones."""

    def event(self, kind: str, **fields) -> None:
        """A notable fact (a warning, a finished step)."""

    @contextmanager
    def task(self, description: str, total_bytes: int | None) -> Iterator["callable"]:
        """A measurable step; yields `advance(num_bytes, **counters)`. `total_bytes=None`: a step
        measured by its counters alone (tables assessed, say)."""
        yield lambda num_bytes, **counters: None


class ConsoleReporter(Reporter):
    """Rich progress bars (bytes read, ETA), warnings and errors on stderr; results on stdout."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.out = Console()

    def event(self, kind: str, **fields) -> None:
        message = fields.get("message")
        if message is None:
            return
        # soft_wrap: long lines are the terminal's to wrap, never cut by inserted newlines
        if kind == "warning":
            self.console.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)
        elif kind == "error":
            self.console.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)
        elif kind in RESULT_EVENTS:
            self.out.print(Text(message, style=STATUS_STYLES.get(fields.get("status"), "")), soft_wrap=True)
        else:
            self.console.print(Text(message), soft_wrap=True)

    @contextmanager
    def task(self, description: str, total_bytes: int | None):
        columns = (
            TextColumn("{task.description}", style="bold", markup=False),  # table names are not markup
            BarColumn(),
            *([DownloadColumn()] if total_bytes is not None else []),  # None: a step counted in its counters
            TextColumn("{task.fields[counters]}", markup=False),
            TimeElapsedColumn(),
            *([TimeRemainingColumn()] if total_bytes is not None else []),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total_bytes, counters="")
            totals: dict[str, int] = {}

            def advance(num_bytes: int, **counters: int) -> None:
                for key, value in counters.items():
                    totals[key] = totals.get(key, 0) + value
                text = " ".join(f"{v:,} {k}" for k, v in totals.items())
                progress.update(task_id, advance=num_bytes, counters=text)

            yield advance


class JsonReporter(Reporter):
    """One JSON object per line on stdout: {"event": ..., "ts": ..., ...}."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def event(self, kind: str, **fields) -> None:
        self.stream.write(json.dumps({"event": kind, "ts": round(time.time(), 3), **fields}, default=str) + "\n")
        self.stream.flush()

    @contextmanager
    def task(self, description: str, total_bytes: int):
        self.event("task_started", task=description, total_bytes=total_bytes)
        done = {"bytes": 0}

        def advance(num_bytes: int, **counters: int) -> None:
            done["bytes"] += num_bytes
            self.event("progress", task=description, bytes=done["bytes"], total_bytes=total_bytes, **counters)

        yield advance
        self.event("task_finished", task=description, bytes=done["bytes"])
