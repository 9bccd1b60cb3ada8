"""The bytes level's re-read of every landed log file, apart from the landing's own reader.

Each file is read again from disk or the object store: its sha256 (hashlib, not DuckDB) and, for
a JSON commit, its actions and blank lines (`_json_file_layout`), so any action the landing lost,
moved or changed, and any blank line it did not record, shows up in the comparison
(`reference_log_files`, `reference_log_lines`).

`validate` runs the re-read on a thread while delta-rs loads the snapshots (`ReReads.start`),
then stores what it read (`ReRead.store`). delta-rs lets go of the GIL and keeps about
one core busy for most of validation's time on a long log; the re-read is the other core's work.
Its rows go to a spool file as they are read, not to the catalog: held in memory or in the
catalog's buffers they would sit beside delta-rs's state at its peak (tried: validate wide x4 then
peaked 562 MiB over delta-rs's own load, against the 500 MB budget). What it holds meanwhile is
one spool batch and, from an object store, the commits fetched ahead (`HELD_BYTES` in
log_store.py). The spool is about the size of the commits' text, in the temporary directory
(`TMPDIR`), and is read back a batch at a time.
"""

from __future__ import annotations

import json
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pyarrow as pa

from delta2sql.catalog import CatalogConnection
from delta2sql.file_digest import digest_bytes
from delta2sql.log_store import TableLog

FETCH_CHUNK = 1_000  # log files fetched together from an object store (concurrently), then hashed
SPOOL_ROWS = 20_000  # rows held before they are written to the spool
SPOOL_TEXT_CHARS = 8 << 20  # ... or this many characters of line text, whichever comes first

FILE_SCHEMA = pa.schema([("table_name", pa.string()), ("log_file", pa.string()), ("sha256", pa.string()),
                         ("size_bytes", pa.int64()), ("ends_with_newline", pa.bool_()), ("blank_lines", pa.string())])
LINE_SCHEMA = pa.schema([("table_name", pa.string()), ("log_file", pa.string()), ("line_number", pa.int64()),
                         ("line_text", pa.string())])


class ReReadStopped(Exception):
    """The re-read was told to stop: the validation around it failed."""


class _Spool:
    """Rows of one reference table, written to an Arrow file a bounded batch at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.text_chars = 0
        self.writer = pa.ipc.new_file(path, schema)

    def add(self, *values, text_chars: int = 0) -> None:
        for column, value in zip(self.columns.values(), values, strict=True):
            column.append(value)
        self.text_chars += text_chars
        if len(self.columns["table_name"]) >= SPOOL_ROWS or self.text_chars >= SPOOL_TEXT_CHARS:
            self.flush()

    def flush(self) -> None:
        if self.columns["table_name"]:
            self.writer.write_batch(pa.record_batch(list(self.columns.values()), schema=self.schema))
        for column in self.columns.values():
            column.clear()
        self.text_chars = 0

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def batches(self):
        """The spooled rows, one written batch at a time. Read, not memory-mapped: the pages of a
        mapped file count in the process's resident memory until it is unmapped."""
        with pa.OSFile(str(self.path)) as source:
            reader = pa.ipc.open_file(source)
            for index in range(reader.num_record_batches):
                yield reader.get_batch(index)


class ReReads:
    """Re-reads run one at a time on a thread of their own, beside the caller's work.

    Used as a context manager: leaving it waits for the thread (told to stop first when leaving
    on an exception, checked before the listing, each fetch and each file) and then removes the
    spools."""

    def __enter__(self) -> Self:
        self._spool_dir = tempfile.TemporaryDirectory(prefix="delta2sql-reread-")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="delta2sql-reread")
        self._stop = threading.Event()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self._stop.set()
        self._pool.shutdown(wait=True)  # the thread is done with its spool before the spool goes
        self._spool_dir.cleanup()

    def start(self, table_name: str, names: list[str], log: TableLog) -> ReRead:
        """Begin re-reading the landed log files `names` of `table_name`."""
        directory = Path(tempfile.mkdtemp(prefix="reread-", dir=self._spool_dir.name))
        read = ReRead(table_name, _Spool(directory / "files.arrow", FILE_SCHEMA),
                      _Spool(directory / "lines.arrow", LINE_SCHEMA), self._stop)
        read.done = self._pool.submit(read.run, names, log)
        return read


@dataclass
class ReRead:
    """One table's re-read: one row per landed file, one per JSON action, spooled."""
    table_name: str
    files: _Spool
    lines: _Spool
    stop: threading.Event  # set when the work around the re-read failed
    done: Future = field(init=False)  # the thread's run

    def run(self, names: list[str], log: TableLog) -> None:
        """Read the files (on the re-read thread: no catalog connection is touched). Raises
        ReReadStopped once `stop` is set."""
        try:
            self._check_stop()
            present = log.describe(names)  # an object store: one listing, then many objects fetched at a time
            for start in range(0, len(names), FETCH_CHUNK):
                chunk = names[start:start + FETCH_CHUNK]
                self._check_stop()
                log.fetch([present[n] for n in chunk if n in present])
                for log_file in chunk:
                    self._check_stop()
                    self._reread_file(log_file, log if log_file in present else None)
        finally:
            self.files.close()
            self.lines.close()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise ReReadStopped

    def _reread_file(self, log_file: str, log: TableLog | None) -> None:
        """One file's row (only its name when it is gone: `log` None, or gone when read), and a
        JSON commit's actions."""
        is_json, data, digest = log_file.endswith(".json"), None, None
        if log is not None and is_json:  # a commit is small: read once, then hashed and split
            data = log.read_bytes(log_file)
            digest = None if data is None else digest_bytes(data)
        elif log is not None:  # a checkpoint is hashed in chunks
            digest = log.digest(log_file)
        if digest is None:
            self.files.add(self.table_name, log_file, None, None, None, None)
            return
        blank_lines = None
        if is_json:
            actions, blank = _json_file_layout(data)
            blank_lines = json.dumps(blank, separators=(",", ":"), ensure_ascii=False) if blank else None
            for line_number, text in actions:
                self.lines.add(self.table_name, log_file, line_number, text, text_chars=len(text))
        self.files.add(self.table_name, log_file, digest.sha256, digest.size_bytes, digest.ends_with_newline,
                       blank_lines)

    def store(self, con: CatalogConnection) -> None:
        """Wait for the re-read, then replace the table's rows of reference_log_files and
        reference_log_lines with its own and remove its spool."""
        self.done.result()
        for table, spool in (("reference_log_files", self.files), ("reference_log_lines", self.lines)):
            con.execute(f"delete from {table} where table_name = ?", [self.table_name])
            con.load_arrow_batches(table, spool.batches())
            spool.path.unlink()


def _json_file_layout(data: bytes) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """The actions of a JSON log file as (line it starts on, its whole lines), and its blank lines
    ({"<line>": text}).

    Lines are split on b"\n" only (a "\r" stays in its line, as in the landing). A line of only
    spaces, tabs or "\r" is blank; any other line starts an action, which takes the following
    lines until their text parses as JSON (a pretty-printed action). Written apart from the
    landing's parser (which reads a stream of values), so the two check each other."""
    parts = data.decode("utf-8").split("\n")
    if data.endswith(b"\n") or not data:  # the empty string after the final newline, or of an empty file
        parts.pop()
    actions, blank, index = [], {}, 0
    while index < len(parts):
        if parts[index].strip(" \t\r") == "":
            blank[str(index + 1)] = parts[index]
            index += 1
            continue
        end = index + 1
        while end < len(parts) and not _parses("\n".join(parts[index:end])):
            end += 1
        actions.append((index + 1, "\n".join(parts[index:end])))
        index = end
    return actions, blank


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
