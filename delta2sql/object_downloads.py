"""Object-store downloads, running in the background while the caller works.

One pool of `concurrency` threads serves every download of a log for the whole command. `start()`
returns at once, so the next batch's commits arrive while DuckDB parses the current batch; the
caller waits on the returned future when it needs the object. A small object the caller may hold
(a commit) stays in memory; any other is written to a local file, streamed in 1 MiB chunks so
memory does not grow with a checkpoint's size.

Measured on 5,000 commit-sized objects from a local S3 server (SeaweedFS), client CPU per
object: 0.16-0.20 ms kept in memory, 0.23 ms written to a file on tmpfs, 0.44-1.07 ms written
to a file on ext4 (nearly all of it system time), 1.2-1.5 ms streamed to a `.partial` file and
renamed. A pool per batch, as before, could not overlap the network with the landing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from delta2sql.file_digest import CHUNK_BYTES


class Downloads:
    """The downloads of one object store, `concurrency` at a time."""

    def __init__(self, store, concurrency: int) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="delta2sql-download")

    def start(self, key: str, target: Path, hold: Callable[[int], bool] | None = None) -> Future:
        """Download `key` in the background. The future gives (obstore's ObjectMeta, the bytes, the
        seconds the download took once started) when the object is at most 1 MiB and `hold(size)`
        agrees to keep it in memory, else (meta, None, seconds) once `target` holds the whole
        object; it raises what the store raised (FileNotFoundError when absent), and a failed
        download leaves no file."""
        return self._pool.submit(self._download, key, str(target), hold)

    def _download(self, key: str, target: str,
                  hold: Callable[[int], bool] | None) -> tuple[dict, bytes | None, float]:
        import obstore

        started = time.perf_counter()
        result = obstore.get(self._store, key)
        size = result.meta["size"]
        if size <= CHUNK_BYTES and hold is not None and hold(size):
            # obstore's Bytes, as the bytes callers expect
            return result.meta, bytes(result.bytes()), time.perf_counter() - started
        try:
            with open(target, "wb") as out:
                if size <= CHUNK_BYTES:
                    out.write(result.bytes())
                else:
                    out.writelines(result.stream(min_chunk_size=CHUNK_BYTES))
        except BaseException:
            Path(target).unlink(missing_ok=True)
            raise
        return result.meta, None, time.perf_counter() - started

    def close(self) -> None:
        """Drop the downloads not yet started (a batch failed while the next one was arriving)
        and wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)
