"""The task queue: Procrastinate on the store's PostgreSQL database (the one module that imports it).

Two tasks: `monitor.poll` (one source) and `monitor.evaluate` (alerts, then their delivery). Procrastinate's
tables are applied once by the program, like the store's migrations (`ensure_schema`), and its own later
migrations when a newer Procrastinate comes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources

import procrastinate
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status

from monitor.store import ClusterStore

log = logging.getLogger("monitor.queue")

POLL = "monitor.poll"
EVALUATE = "monitor.evaluate"
MIGRATION_SET = "procrastinate"
KEPT_HOURS = 24  # finished jobs (failed, aborted) are kept this long for a look, then deleted
POOL_SIZE = 4  # the queue's connections per process (besides its LISTEN connection)
App = procrastinate.App
QueueError = queue_errors.ConnectorException  # the queue's database could not be reached or refused a query


def open_app(url: str, store: ClusterStore) -> App:
    """An App on the store's database (at `url`), with the store's connection options (password, timeouts); open
    it with `async with app.open_async()`."""
    options = store.connection_options()
    connector = procrastinate.PsycopgConnector(conninfo=url, kwargs=options, min_size=1, max_size=POOL_SIZE)
    return procrastinate.App(connector=connector)


def ensure_schema(store: ClusterStore) -> list[str]:
    """Procrastinate's tables in the store's database: its whole schema the first time (its migrations up to now
    recorded as applied with it), later only its migrations not applied yet. Idempotent; returns what it applied."""
    folder = resources.files("procrastinate.sql")
    migrations = sorted(p.name for p in folder.joinpath("migrations").iterdir() if p.name.endswith(".sql"))

    def plan(applied: set[str]) -> Sequence[tuple[str, str | None]]:
        if not applied:
            schema = folder.joinpath("schema.sql").read_text(encoding="utf-8")
            return [(f"schema {procrastinate.__version__}", schema), *((m, None) for m in migrations)]
        return [
            (m, folder.joinpath("migrations", m).read_text(encoding="utf-8")) for m in migrations if m not in applied
        ]

    done = store.apply_scripts(MIGRATION_SET, plan)
    if done:
        log.info("queue_schema_applied steps=%d first=%r", len(done), done[0])
    return done


async def defer_poll(app: App, source: str) -> bool:
    """Queue a poll of `source`; False when one is already waiting (it stands for this one)."""
    deferrer = app.configure_task(POLL, lock=f"source:{source}", queueing_lock=f"poll:{source}")
    try:
        await deferrer.defer_async(source=source)
    except queue_errors.AlreadyEnqueued:
        return False
    return True


async def defer_evaluate(app: App) -> bool:
    """Queue an alert evaluation; False when one is already waiting (it will see what this one would)."""
    deferrer = app.configure_task(EVALUATE, lock="alerts", queueing_lock="evaluate")
    try:
        await deferrer.defer_async()
    except queue_errors.AlreadyEnqueued:
        return False
    return True


async def requeue_stalled(app: App, stalled_after_s: float) -> list[str]:
    """Put back in the queue the running jobs of workers silent for `stalled_after_s` (killed, or cut off), and
    forget those workers. A job whose source has a poll waiting already is ended instead (that one stands for
    it). Returns the jobs' call strings."""
    manager = app.job_manager
    requeued = []
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        assert job.id is not None
        try:
            await manager.retry_job(job)
        except queue_errors.UniqueViolation:  # its queueing lock is taken by a waiting job of the same source
            await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
        requeued.append(job.call_string)
    await manager.prune_stalled_workers(stalled_after_s)
    return requeued


async def prune_jobs(app: App) -> None:
    """Delete the finished jobs older than KEPT_HOURS (the successful ones are deleted as they finish)."""
    await app.job_manager.delete_old_jobs(
        nb_hours=KEPT_HOURS, include_failed=True, include_cancelled=True, include_aborted=True
    )


async def backlog(app: App) -> tuple[int, int]:
    """(jobs waiting, jobs running), for the scheduler's heartbeat line."""
    rows = list(await app.job_manager.list_queues_async())
    return sum(int(r["todo"]) for r in rows), sum(int(r["doing"]) for r in rows)


def register(app: App, poll: Callable[[str], Awaitable[None]], evaluate: Callable[[], Awaitable[None]]) -> None:
    """The worker's implementations of the two tasks. The first job tells the log which queue worker this
    process is (`procrastinate_workers.id`, the `worker_id` of the jobs it runs)."""
    told: list[int] = []

    def tell(context: JobContext) -> None:
        worker_id = context.job.worker_id
        if not told and worker_id is not None:
            told.append(worker_id)
            log.info("queue_worker id=%d name=%s", worker_id, context.worker_name)

    async def poll_task(context: JobContext, source: str) -> None:
        tell(context)
        await poll(source)

    async def evaluate_task(context: JobContext) -> None:
        tell(context)
        await evaluate()

    app.task(name=POLL, pass_context=True)(poll_task)
    app.task(name=EVALUATE, pass_context=True)(evaluate_task)


async def run_worker(
    app: App, *, name: str, concurrency: int, heartbeat_s: float, stalled_after_s: float, grace_s: float
) -> None:
    """Run jobs until SIGTERM/SIGINT (Procrastinate's handlers: no new job starts, running ones get `grace_s`,
    then are cancelled). Successful jobs are deleted as they finish: the table holds only live work."""
    await app.run_worker_async(
        name=name,
        concurrency=concurrency,
        wait=True,
        delete_jobs="successful",
        shutdown_graceful_timeout=grace_s,
        update_heartbeat_interval=heartbeat_s,
        stalled_worker_timeout=stalled_after_s,
        fetch_job_polling_interval=1.0,
        listen_notify=True,
        install_signal_handlers=True,
    )
