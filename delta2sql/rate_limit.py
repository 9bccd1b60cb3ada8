"""`--max-rows-per-second`: one token bucket per catalog, kept in the catalog (`rate_limits`), so
every process writing to it (`migrate`, `sync`, the workers on many machines) shares one cap.

After each committed batch its process takes as many tokens as the rows it landed. The bucket
refills at the cap and holds at most one second of it (the burst); a take may leave it in debt,
and the process then sleeps until the debt is repaid before its next batch, so all writers
together average the cap. A take is one UPDATE on the bucket's row, outside any batch's
transaction (on PostgreSQL, the row's lock orders concurrent takes). The cap applies to landed
log rows (`delta_log_actions`); the dbt build's rows follow from them.
"""

from __future__ import annotations

import time

from delta2sql.catalog import CatalogConnection

BUCKET = "landed_rows"


def take(con: CatalogConnection, rows: int, rows_per_second: float) -> float:
    """Take `rows` tokens (the connection has no open transaction); sleep off a debt. Returns the
    seconds slept."""
    now = time.time()
    con.execute("insert into rate_limits (bucket, rows_per_second, tokens, refilled_at) values (?, ?, ?, ?) "
                "on conflict do nothing", [BUCKET, rows_per_second, rows_per_second, now])
    # min(cap, tokens + cap * elapsed) - rows, elapsed never negative (clocks of two machines
    # differ); numbers of this process inlined, as the engines spell min/max differently
    cap, now = float(rows_per_second), float(now)
    elapsed = f"(case when {now!r} > refilled_at then {now!r} - refilled_at else 0 end)"
    refilled = f"(tokens + {cap!r} * {elapsed})"
    (tokens,) = con.execute(
        f"update rate_limits set rows_per_second = {cap!r}, "
        f"tokens = (case when {refilled} > {cap!r} then {cap!r} else {refilled} end) - {int(rows)}, "
        f"refilled_at = case when {now!r} > refilled_at then {now!r} else refilled_at end "
        "where bucket = ? returning tokens", [BUCKET],
    ).fetchone()
    if tokens >= 0:
        return 0.0
    seconds = -tokens / cap
    time.sleep(seconds)
    return seconds


def current_cap(con: CatalogConnection) -> float | None:
    """The cap the writers of this catalog last used, if any did."""
    row = con.execute("select rows_per_second from rate_limits where bucket = ?", [BUCKET]).fetchone()
    return None if row is None else row[0]
