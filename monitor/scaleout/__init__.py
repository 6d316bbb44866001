"""Polls spread over machines: `monitor run --role scheduler` enqueues due polls, `monitor worker` runs them.

The queue is Procrastinate's, in the store's own PostgreSQL database (no other server). Guarantees, and what
gives each:
- a source is queued at most once (the job's queueing lock `poll:<source>`) and polled by one worker at a time
  (its lock `source:<source>`: no job of that lock starts while another one runs; and, for a job requeued while
  its stalled first run still goes on, the source's advisory lock, store.postgres.cluster.SourceLocks);
- the per-host limit holds across workers: a request holds one of the host's `per_host` advisory locks
  (store.postgres.cluster.HostSlots), released by the server when a killed worker's connection ends;
- alerts are evaluated by one worker at a time (the evaluate job's lock `alerts`, at most one waiting) and each
  delivery is claimed in the store with a lease (the outbox's claim), so each alert is sent once;
- a worker killed mid-poll loses nothing committed (a poll is one transaction) and its job runs again elsewhere:
  workers beat a heartbeat, the scheduler puts the jobs of a worker silent for `stalled_after` back in the queue;
- one scheduler: it holds the store's daemon lock; a second one waits as a standby and takes over when the
  first one's lock goes (the server drops it with the first one's connection).
"""

from __future__ import annotations

from monitor.config import Config
from monitor.exceptions import ConfigError
from monitor.types import StoreURL


def postgres_store(config: Config, command: str) -> StoreURL:
    """The config's PostgreSQL store, or ConfigError (exit 2) for a SQLite one: the queue lives in PostgreSQL."""
    if isinstance(config.store, StoreURL):
        return config.store
    raise ConfigError(
        f"store: {command} needs a PostgreSQL store (store: postgresql://...), and {config.store} is a SQLite file: "
        "use `monitor run` on one machine"
    )
