"""delta-rs (`deltalake`), imported through this module so that its allocator gives memory back.

delta-rs allocates with jemalloc, which by default keeps freed pages and gives them back only
when it allocates again. In `validate` delta-rs reads the table and is done, so its pages stayed
with the process through the checks that follow: after reading wide_delta_rs (delta-rs's own
checkpoint) and freeing the table, 1,262-1,490 MiB stayed resident, and the checkpoint
comparison added to that (validate peaked 1,736-2,085 MiB, delta-rs alone 1,472). With a
jemalloc thread giving freed pages back after a second, 145-148 MiB stay, and validate peaked
at 1,446-1,566 MiB in the same time (3 pairs, 2026-12-08). Giving them back at once
(dirty_decay_ms:0) peaked lower, 1,405-1,411 MiB, but took 1.06x the time.
jemalloc reads the setting once, when delta-rs first allocates; a setting of the user's wins.
"""

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")

import deltalake  # after the setting, which jemalloc reads when it starts

__all__ = ["deltalake"]
