"""Workers on many machines: a PostgreSQL catalog is its own work queue (ADR 0008).

`enqueue` puts one job per table into procrastinate's tables, in the catalog's schema, so the
catalog database is the only infrastructure. `worker` processes, started on any machine that
reaches it, claim jobs (procrastinate fetches them with `FOR UPDATE SKIP LOCKED`), migrate and
validate each table, and record what they did in `worker_jobs`. procrastinate gives the rest:
- a job's `lock` is its table: two jobs of one table never run at once; its `queueing_lock` too:
  a table is queued at most once while it waits;
- a failed job is tried `ATTEMPTS` times in all, waiting `RETRY_WAIT_SECONDS` and then its
  square, then stays `failed` (parked for a person: `enqueue` queues it again);
- a worker that dies stops its heartbeat; every worker looks for stalled jobs every
  `STALLED_CHECK_SECONDS` and retries those of a worker `STALLED_AFTER_SECONDS` silent; the next
  worker takes the table's run over from its lease (`lifecycle.take_over`) and resumes it after
  its committed batches.
dbt runs one at a time per catalog (an advisory lock, `dbt_runner.run_dbt`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from dataclasses import dataclass

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued

from delta2sql.catalog import Catalog
from delta2sql.errors import CatalogError, Delta2SqlError
from delta2sql.landing_schema import create_landing_tables, schema_lock
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.progress import Reporter
from delta2sql.reference import create_reference_tables
from delta2sql.runs import RunOptions
from delta2sql.validate import validate_tables

QUEUE = "delta2sql"
TASK = "migrate_table"
ATTEMPTS = 3  # then the job stays `failed`: parked for a person
RETRY_WAIT_SECONDS = 10  # the second attempt 10 s after the first fails, the third 100 s after the second
STALLED_AFTER_SECONDS = 30  # procrastinate's workers beat every 10 s
STALLED_CHECK_SECONDS = 10


class TableFailed(Delta2SqlError):
    """The table's migration or validation failed: procrastinate retries the job, then parks it."""


@dataclass(frozen=True)
class Enqueued:
    table: str
    job_id: int | None  # None: already waiting in the queue


def _require_postgres(catalog: Catalog) -> None:
    if catalog.target != "postgres":
        raise CatalogError(f"workers share a PostgreSQL catalog (--target postgres); this catalog is "
                           f"{catalog.target}: use `migrate --manifest ... --parallel N` on one machine")


def _app(catalog: Catalog) -> procrastinate.App:
    s = catalog.settings
    schema = s["schema"].replace("\\", "\\\\").replace(" ", "\\ ")
    connector = procrastinate.PsycopgConnector(kwargs={
        "host": s["host"], "port": s["port"], "user": s["user"], "password": s.get("password") or None,
        "dbname": s["dbname"], "options": f"-c search_path={schema}",
    }, min_size=1, max_size=4)
    return procrastinate.App(connector=connector)


def _install(catalog: Catalog, app: procrastinate.App) -> None:
    """procrastinate's tables and the catalog's own, once, before any job: concurrent
    `create table if not exists` of one table conflict on PostgreSQL, so installers wait in turn."""
    with catalog.connect() as con, schema_lock(con):
        create_landing_tables(con)
        create_reference_tables(con)
        if con.raw.execute("select to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            app.schema_manager.apply_schema()


def enqueue(catalog: Catalog, specs: list[TableSpec]) -> list[Enqueued]:
    """One job per table; a table already waiting in the queue is not queued twice."""
    _require_postgres(catalog)
    for spec in specs:
        if spec.storage_options:
            raise Delta2SqlError(f"{spec.name}: storage_options are not queued (the queue is a table of the catalog "
                                 "database): give workers their credentials through the environment")
    app = _app(catalog)
    task = app.task(name=TASK, queue=QUEUE)(lambda **_: None)  # deferred by name; the worker runs it
    with app.open():
        _install(catalog, app)
        queued = []
        for spec in specs:
            args = {"path": str(spec.path), "name": spec.name, "version": spec.version,
                    "full_history": spec.full_history, "catalog_version": spec.catalog_version}
            try:
                job_id = task.configure(lock=spec.name, queueing_lock=spec.name).defer(**args)
            except AlreadyEnqueued:
                job_id = None
            queued.append(Enqueued(spec.name, job_id))
    return queued


def run_worker(catalog: Catalog, reporter: Reporter, concurrency: int = 1, max_tables: int | None = None,
               until_empty: bool = False, options: RunOptions | None = None,
               retry_wait: int = RETRY_WAIT_SECONDS) -> int:
    """Claim and work queued tables until stopped (SIGTERM), `max_tables` were claimed, or, with
    `until_empty`, the queue is empty. Returns how many tables this worker finished."""
    _require_postgres(catalog)
    app = _app(catalog)
    me = f"{socket.gethostname()}:{os.getpid()}"
    counts = {"claimed": 0, "finished": 0}
    counting = threading.Lock()
    stop: list = []  # the running worker's task and loop, to cancel it from a job's thread

    # procrastinate's max_attempts counts the retries after the first attempt
    retry = procrastinate.RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=retry_wait)

    @app.task(name=TASK, queue=QUEUE, retry=retry, pass_context=True)
    def migrate_table(context, path, name, version=None, full_history=False, catalog_version=None):
        with counting:
            counts["claimed"] += 1
            last = max_tables is not None and counts["claimed"] >= max_tables
        if last and stop:  # claim no more; the jobs in hand finish (graceful stop)
            task, loop = stop
            loop.call_soon_threadsafe(task.cancel)
        job = context.job
        _record(catalog, job.id, job.attempts + 1, name, me)
        reporter.event("job_claimed", table=name, job_id=job.id, attempt=job.attempts + 1, worker=me,
                       message=f"{name}: claimed by {me} (job {job.id}, attempt {job.attempts + 1})")
        try:
            spec = TableSpec(path, name, version, full_history, catalog_version)
            [outcome] = migrate_tables([spec], catalog, reporter, options or RunOptions())
            if outcome.status != "migrated":
                raise TableFailed(f"{name}: {outcome.error}")
            failed = sorted({c.check_name for c in validate_tables(catalog, reporter, [name]) if c.failed})
            if failed:
                raise TableFailed(f"{name}: validation failed: {', '.join(failed)}")
        except Exception as exc:
            error = str(exc) if isinstance(exc, Delta2SqlError) else f"unexpected: {exc!r}"
            _finish(catalog, job.id, job.attempts + 1, "failed", error)
            reporter.event("job_finished", table=name, job_id=job.id, status="failed", error=error,
                           message=f"{name}: failed (attempt {job.attempts + 1} of {ATTEMPTS}): {error}")
            raise
        _finish(catalog, job.id, job.attempts + 1, "done", None)
        with counting:
            counts["finished"] += 1
        reporter.event("job_finished", table=name, job_id=job.id, status="done", error=None,
                       message=f"{name}: migrated and validated by {me}")

    async def work() -> None:
        async with app.open_async():
            await asyncio.to_thread(_install, catalog, app)
            stop[:] = [asyncio.current_task(), asyncio.get_running_loop()]
            watch = asyncio.create_task(_retry_stalled_jobs(app))
            try:
                await app.run_worker_async(queues=[QUEUE], concurrency=concurrency, wait=not until_empty,
                                           name=me, delete_jobs="never")
            except asyncio.CancelledError:
                pass  # --max-tables reached: the worker stopped gracefully
            finally:
                watch.cancel()

    asyncio.run(work())
    return counts["finished"]


async def _retry_stalled_jobs(app: procrastinate.App) -> None:
    """Every worker, beside its jobs (not in a job slot, which a long table may hold for hours):
    the jobs of workers silent for STALLED_AFTER_SECONDS (killed, or cut off) go back to the
    queue. A retried job's table is taken over from its run's lease and resumed."""
    manager = app.job_manager
    while True:
        await asyncio.sleep(STALLED_CHECK_SECONDS)
        for job in await manager.get_stalled_jobs(queue=QUEUE, task_name=TASK,
                                                  seconds_since_heartbeat=STALLED_AFTER_SECONDS):
            await manager.retry_job(job)


def _record(catalog: Catalog, job_id: int, attempt: int, table: str, worker: str) -> None:
    with catalog.connect() as con:
        con.execute("insert into worker_jobs (job_id, attempt, table_name, worker, claimed_at, status) "
                    "values (?, ?, ?, ?, current_timestamp, 'claimed')", [job_id, attempt, table, worker])


def _finish(catalog: Catalog, job_id: int, attempt: int, status: str, error: str | None) -> None:
    try:
        with catalog.connect() as con:
            con.execute("update worker_jobs set status = ?, error = ?, finished_at = current_timestamp "
                        "where job_id = ? and attempt = ?", [status, error, job_id, attempt])
    except (Delta2SqlError, psycopg.Error):  # the database is what failed: procrastinate retries the job
        pass


def queue_state(catalog: Catalog) -> list[dict]:
    """Each queued table's newest job: its queue status, the attempts workers made (claims), who
    claimed it last, and the error of its last failed attempt. Empty without a queue."""
    if catalog.target != "postgres":
        return []
    with catalog.connect() as con:
        if con.raw.execute("select to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            return []
        create_landing_tables(con)
        cursor = con.raw.execute(
            """
            with newest_jobs as (
                select distinct on (args ->> 'name') id, args ->> 'name' as table_name, status::text as status,
                       scheduled_at
                from procrastinate_jobs
                where task_name = %s
                order by args ->> 'name', id desc
            ),

            newest_claims as (
                select distinct on (job_id) job_id, attempt, worker, claimed_at, status as claim_status, error
                from worker_jobs
                order by job_id, attempt desc
            )

            select newest_jobs.table_name, newest_jobs.id as job_id, newest_jobs.status,
                   coalesce(newest_claims.attempt, 0) as attempts,
                   newest_jobs.scheduled_at, newest_claims.worker, newest_claims.claimed_at,
                   newest_claims.claim_status, newest_claims.error
            from newest_jobs
            left join newest_claims on newest_jobs.id = newest_claims.job_id
            order by newest_jobs.table_name
            """,
            [TASK],
        )
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
