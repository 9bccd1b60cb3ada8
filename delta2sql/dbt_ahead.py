"""dbt made ready in a child process while the work before its run goes on, then given the run.

Before its first node, a dbt run in this process paid for importing dbt (2-4 s), loading the
profile and project for the first time (1-2 s) and loading the project's parse (0.3 s kept,
3-7 s not): on long x1, 6-7 s between the last batch landing and the build's first node, in an
hour when the build's nodes took 5.5 s. `start` runs a child that does all of it while the
batches land (or validate's references load), on the core that work leaves idle, and then
waits; `take` waits for it to be ready, `give` hands it the run's command, and the run reads
the child's node events and outcome as they come. The child's build began its first node 0.6 s
after it was asked, where a run in this process began it after 5.5-6.5 s (long x1, 3 runs each).

The child is asked for one run, with the vars it parsed for, and exits. It opens the catalog
only for that run, after the process that started it has closed its own connections (a DuckDB
file has one writer process). It inherits the environment (the PG* variables), writes only its
target directories, and exits when the process that started it is gone, so it never holds a
catalog for a killed migration. A child that is not ready (its parse failed, it died, it takes
longer than READY_SECONDS) is stopped, and the run runs in this process, as without it.

Messages go one JSON object per line over the child's own copy of its stdout; dbt's own output
in the child goes to /dev/null, so it cannot garble them.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from delta2sql import dbt_parses
from delta2sql.errors import Delta2SqlError

# Of log to land or to validate, for a child to be hidden by the work it runs beside: it takes
# ~6 s (its start, dbt's import and the parse); long x1's 83 MB land in ~9 s, 32 MB in ~3.5 s
# (validating them takes longer). Below it the run would wait for the child.
MIN_BYTES = 32 << 20
# What a child holds once ready (dbt imported, the project parsed: 135 MiB measured), counted in
# the command's memory budget beside the landing (extract.LogReader): wide x4 into DuckDB peaked
# at 1,024 MiB for the two processes without it.
CHILD_BYTES = 160 << 20
READY_SECONDS = 300  # a child not ready this long after the run asked for it is stopped
EXIT_SECONDS = 30  # for a child that has reported its run to exit, before it is killed
PARENT_POLL_SECONDS = 0.2  # how often the child checks that the process that started it is there


@dataclasses.dataclass
class Outcome:
    """What the child's dbt run returned: as dbtRunner's result, in plain values."""

    success: bool
    exception: str | None
    tags: dict[str, list[str]]  # each node's dbt tags, by unique_id


@dataclasses.dataclass
class _Child:
    process: subprocess.Popen
    target_path: Path  # the child's parse: its partial_parse.msgpack, to keep for later runs

    def stop(self, grace_seconds: float = 0) -> None:
        """Wait `grace_seconds` for the child to exit (it has reported its run), then kill it."""
        try:
            self.process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.target_path, ignore_errors=True)

    def ready(self) -> bool:
        """Wait for the child's parse: whether it parsed (False if it died, or was killed after READY_SECONDS)."""
        timer = threading.Timer(READY_SECONDS, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        return bool(line) and bool(json.loads(line)["ready"])

    def run(self, args: list[str], on_node: Callable[[str, str], None]) -> Outcome | None:
        """The child's run of `dbt <args>`; None if the child is gone before it was given the run."""
        try:
            self.process.stdin.write(json.dumps({"args": args}) + "\n")
            self.process.stdin.close()
        except BrokenPipeError:
            return None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
                if "node" not in message:
                    return Outcome(**message)
                on_node(message["node"], message["status"])
            except (ValueError, KeyError, TypeError):  # cut off: the child was killed while it wrote
                break
        self.process.wait()
        raise Delta2SqlError(f"dbt {args[0]} could not run: its process (PID {self.process.pid}) ended with exit "
                             f"code {self.process.returncode} before its run did{self._stderr_tail()}")

    def _stderr_tail(self) -> str:
        try:
            lines = (self.target_path / "stderr.txt").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""


def node_callback(on_node: Callable[[str, str], None]):
    """A dbtRunner callback calling `on_node(unique_id, status)` as each node finishes."""

    def on_event(event) -> None:
        if event.info.name == "NodeFinished":
            on_node(event.data.node_info.unique_id, event.data.node_info.node_status)

    return on_event


def outcome_of(result) -> Outcome:
    """A dbtRunner result as an Outcome, whether the run ran here or in a child."""
    nodes = result.result.results if result.exception is None and hasattr(result.result, "results") else []
    return Outcome(success=bool(result.success), exception=None if result.exception is None else str(result.exception),
                   tags={r.node.unique_id: list(r.node.tags) for r in nodes})


_CHILDREN: dict[tuple[str, str], _Child] = {}  # by the target and the vars they parsed for
_LOCK = threading.Lock()  # tables of a fleet land, and start children, on threads of their own


def start(options: list[str], target: str, vars_text: str) -> None:
    """Start a child that imports dbt and parses the project with `options` (the run's, but its
    own target directory), from the parse kept for these vars if there is one, unless one is
    under way for them. A child that cannot start (a full temporary directory, no more
    processes) is none: the run runs in this process."""
    with _LOCK:
        if (target, vars_text) in _CHILDREN:
            return
        target_path = None
        try:
            target_path = Path(tempfile.mkdtemp(prefix="delta2sql-dbt-ahead-"))
            dbt_parses.seed(target_path, target, vars_text)
            with open(target_path / "stderr.txt", "wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-m", "delta2sql.dbt_ahead", str(os.getpid()), "parse", *options,
                     "--target-path", str(target_path), "--log-path", str(target_path / "logs")],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        except (OSError, subprocess.SubprocessError):
            if target_path is not None:
                shutil.rmtree(target_path, ignore_errors=True)
            return
        _CHILDREN[(target, vars_text)] = _Child(process, target_path)


def held_bytes() -> int:
    """The memory of the children not yet taken, as the budget counts them."""
    with _LOCK:
        return CHILD_BYTES * len(_CHILDREN)


def take(target: str, vars_text: str) -> _Child | None:
    """The child started for these vars once it has parsed (waiting for it), its parse kept for
    later runs; None when there is none or it is not ready (stopped: the run runs here)."""
    with _LOCK:
        child = _CHILDREN.pop((target, vars_text), None)
    if child is None:
        return None
    if not child.ready():
        child.stop()
        return None
    dbt_parses.keep(child.target_path, target, vars_text)
    return child


def give(child: _Child, args: list[str], on_node: Callable[[str, str], None]) -> Outcome | None:
    """Run `dbt <args>` in a child `take` returned, calling `on_node(unique_id, status)` as each
    node finishes, and stop it; None if it was gone before it got the run (the caller then runs
    dbt itself). Raises when it dies during the run, which then did not complete."""
    outcome = None
    try:
        outcome = child.run(args, on_node)
    finally:
        child.stop(EXIT_SECONDS if outcome is not None else 0)  # the catalog is free once it has exited
    return outcome


@atexit.register
def _stop_children() -> None:
    """A child nobody gave a run (the landing or the validation failed): stopped, its directory removed."""
    with _LOCK:
        for child in _CHILDREN.values():
            child.stop()
        _CHILDREN.clear()


def _main(parent_pid: int, parse_args: list[str]) -> None:
    """The child: parse, say whether it could, wait for the run's args (none: exit), run, report."""
    messages = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()

    from dbt.cli.main import dbtRunner

    parsed = dbtRunner().invoke(parse_args)
    manifest = parsed.result if parsed.success else None  # else the run parses, and reports, itself
    messages.write(json.dumps({"ready": manifest is not None}) + "\n")
    line = sys.stdin.readline()
    if not line:
        return

    def on_node(unique_id: str, status: str) -> None:
        messages.write(json.dumps({"node": unique_id, "status": status}) + "\n")

    result = dbtRunner(manifest=manifest, callbacks=[node_callback(on_node)]).invoke(json.loads(line)["args"])
    messages.write(json.dumps(dataclasses.asdict(outcome_of(result))) + "\n")
    sys.stderr.flush()
    # Tearing down dbt's objects would only delay the run (about a second). dbt-duckdb keeps its
    # DuckDB open (it checkpoints at 16 MB of WAL meanwhile): what its WAL still holds, synced at
    # every commit, is replayed by the next process to open the catalog.
    os._exit(0)


def _exit_when_orphaned(parent_pid: int) -> None:
    """Exit at once when the process that started this one is gone (killed): a build left
    running would hold the catalog against the next migrate."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


if __name__ == "__main__":
    _main(int(sys.argv[1]), sys.argv[2:])
