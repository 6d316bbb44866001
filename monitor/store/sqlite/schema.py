"""The store's schema as numbered migrations, applied by `open_sqlite`.

Which steps a store has had is in `_sqlite_migrations`, the table and layout of sqlite-utils' `Migrations` (which
applied them before this version): either tool reads what the other wrote. The runner is here, not sqlite-utils,
because importing sqlite-utils cost a new store's first poll 74 ms and 14.3 MiB (it imports numpy, dateutil and
pluggy; 2.8 MiB beyond numpy, which the poll loads anyway: `bench/startup_floor.py` on the version before) to run
a few statements and record their names. Concurrent first opens: `apply` reads what is applied again under the
write lock, so the processes that waited find nothing left to do (tests/test_store_migrations.py).

A migration, once released, is never edited: a change of schema is a new function at the end.
The analyst's contract (DESIGN.md, "The store") is the first migration; README.md documents every column.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from monitor.store.sqlite import fts

log = logging.getLogger("monitor.store")

MIGRATION_SET = "monitor"
MIGRATIONS_TABLE = "_sqlite_migrations"
# As sqlite-utils creates it (Migrations.ensure_migrations_table), so that its tools find what they expect.
_MIGRATIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS [{MIGRATIONS_TABLE}] "
    "([id] INTEGER PRIMARY KEY, [migration_set] TEXT, [name] TEXT, [applied_at] TEXT)",
    f"CREATE UNIQUE INDEX IF NOT EXISTS [idx_{MIGRATIONS_TABLE}_migration_set_name] "
    f"ON [{MIGRATIONS_TABLE}] ([migration_set], [name])",
)

# unicode61 folds case in every script; remove_diacritics 2 folds Latin accents (café = cafe) and leaves
# Cyrillic letters such as й, ё, қ, ң, ү, ұ, ә, ө, і alone (they are letters of their own, not accented ones).
FTS_TOKENIZER = "unicode61 remove_diacritics 2"

_INITIAL = [
    """CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        url TEXT,
        title TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        author TEXT,
        published_at TEXT NOT NULL,
        first_seen_at TEXT NOT NULL,
        updated_at TEXT,
        content_hash TEXT NOT NULL,
        cluster_id INTEGER,
        parent_id INTEGER REFERENCES posts(id) ON DELETE SET NULL,
        extra TEXT,
        UNIQUE (source, key)
    )""",
    "CREATE INDEX posts_published_at ON posts (published_at)",
    "CREATE INDEX posts_source_published_at ON posts (source, published_at)",
    "CREATE INDEX posts_cluster_id ON posts (cluster_id)",
    "CREATE INDEX posts_content_hash ON posts (content_hash)",
    "CREATE INDEX posts_parent_id ON posts (parent_id) WHERE parent_id IS NOT NULL",
    """CREATE TABLE matches (
        post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
        topic TEXT NOT NULL,
        term TEXT NOT NULL,
        PRIMARY KEY (post_id, topic)
    ) WITHOUT ROWID""",
    "CREATE INDEX matches_topic ON matches (topic, post_id)",
    # External content: the index holds no second copy of the text. The store adds new posts' rows in bulk
    # in the same transaction as the posts (30% faster than a per-row trigger); the triggers below keep the
    # index in step when a post is edited or deleted, by the program or by anyone else.
    f"""CREATE VIRTUAL TABLE posts_fts USING fts5 (
        title, text, content='posts', content_rowid='id', tokenize='{FTS_TOKENIZER}'
    )""",
    """CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
        INSERT INTO posts_fts (posts_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER posts_fts_update AFTER UPDATE OF title, text ON posts BEGIN
        INSERT INTO posts_fts (posts_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO posts_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    # Near-duplicate index: one MinHash signature per post and its LSH band keys (see dedupe.py).
    """CREATE TABLE post_signatures (
        post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
        signature BLOB NOT NULL
    )""",
    # No foreign key on post_bands: a deleted post's band rows find no signature and are skipped, and an
    # index on post_id for a cascade would double the cost of the hottest insert of a poll.
    """CREATE TABLE post_bands (
        band INTEGER NOT NULL,
        post_id INTEGER NOT NULL,
        PRIMARY KEY (band, post_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        type TEXT,
        url TEXT,
        etag TEXT,
        last_modified TEXT,
        last_ok_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        next_poll_at TEXT,
        retry_at TEXT,
        cursor TEXT,
        last_post_at TEXT,
        health TEXT,
        updated_at TEXT
    )""",
    """CREATE TABLE fetches (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        url TEXT NOT NULL,
        started_at TEXT NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER,
        bytes INTEGER NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        new_posts INTEGER NOT NULL DEFAULT 0,
        error TEXT
    )""",
    "CREATE INDEX fetches_source_started_at ON fetches (source, started_at)",
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'spike',
        topic TEXT,
        source TEXT,
        window_start TEXT,
        window_end TEXT,
        count INTEGER,
        expected REAL,
        score REAL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        sent_at TEXT,
        error TEXT,
        next_attempt_at TEXT,
        message_id TEXT,
        details TEXT
    )""",
    "CREATE INDEX alerts_status ON alerts (status, next_attempt_at)",
    "CREATE INDEX alerts_kind_topic ON alerts (kind, topic, created_at)",
    # Views for SQL users: matching posts per topic per hour / day, and each post with its topics.
    """CREATE VIEW topic_hourly AS
        SELECT m.topic, substr(p.published_at, 1, 13) || ':00:00Z' AS hour,
               count(*) AS posts, count(DISTINCT p.cluster_id) AS stories
        FROM matches m JOIN posts p ON p.id = m.post_id
        GROUP BY m.topic, hour""",
    """CREATE VIEW topic_daily AS
        SELECT m.topic, substr(p.published_at, 1, 10) AS day,
               count(*) AS posts, count(DISTINCT p.cluster_id) AS stories
        FROM matches m JOIN posts p ON p.id = m.post_id
        GROUP BY m.topic, day""",
    """CREATE VIEW post_topics AS
        SELECT p.id, p.source, p.url, p.title, p.published_at, p.cluster_id,
               (SELECT json_group_array(m.topic) FROM matches m WHERE m.post_id = p.id) AS topics
        FROM posts p
        WHERE EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)""",
]


def _initial(conn: sqlite3.Connection) -> None:
    for statement in _INITIAL:
        conn.execute(statement)


def _warnings_and_campaign_cluster(conn: sqlite3.Connection) -> None:
    # What a poll kept despite a fault (a cap, a lenient parse) is a warning on its fetch row and on the source;
    # campaign alerts name the near-duplicate cluster they are about.
    conn.execute("ALTER TABLE fetches ADD COLUMN warning TEXT")
    conn.execute("ALTER TABLE sources ADD COLUMN warnings TEXT")
    conn.execute("ALTER TABLE alerts ADD COLUMN cluster_id INTEGER")


def _deliveries_daemon_and_failure_runs(conn: sqlite3.Connection) -> None:
    # One delivery per alert and channel, claimed before it is sent (claimed_by = host:pid:start of the
    # owner, claim_until = its lease); existing alerts become email deliveries with their state.
    conn.execute(
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            sent_at TEXT,
            error TEXT,
            message_id TEXT,
            claimed_by TEXT,
            claim_until TEXT,
            UNIQUE (alert_id, channel)
        )"""
    )
    conn.execute("CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at)")
    conn.execute(
        """INSERT INTO deliveries (alert_id, channel, status, attempts, next_attempt_at, sent_at, error, message_id)
           SELECT id, 'email', status, attempts, next_attempt_at, sent_at, error, message_id FROM alerts"""
    )
    # The daemon that holds the store, and its heartbeat (one row).
    conn.execute(
        """CREATE TABLE daemon (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            holder TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL
        )"""
    )
    # A source's run of failures: when it began, and how long the last one lasted once the source works again.
    conn.execute("ALTER TABLE sources ADD COLUMN failing_since TEXT")
    conn.execute("ALTER TABLE sources ADD COLUMN last_run_failures INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE sources SET failing_since = last_error_at WHERE failures > 0")


def _fts_found_by_analyst_tools(conn: sqlite3.Connection) -> None:
    # sqlite-utils (`sqlite-utils search`, Table.search) and Datasette (`_search`) find a table's FTS index by
    # its declaration naming the content table as content="posts" (or [posts]); 0001 wrote content='posts',
    # which they miss. Same columns, tokenizer and triggers; the index is rebuilt from posts (one pass).
    conn.execute("DROP TABLE posts_fts")
    conn.execute(
        f"""CREATE VIRTUAL TABLE posts_fts USING fts5 (
            title, text, content="posts", content_rowid="id", tokenize="{FTS_TOKENIZER}"
        )"""
    )
    conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('rebuild')")


def _matches_carry_time_and_cluster(conn: sqlite3.Connection) -> None:
    # Counting a topic's matches by time (stats, the detector's buckets every minute) read one posts row per
    # match: at a million posts, a second. Each match now carries its post's published_at and cluster_id, and
    # an index on (topic, published_at, cluster_id) answers those counts alone. The store writes both with the
    # match; triggers fill them for a match written without them (by anyone) and keep them in step when a
    # post's time or cluster is edited.
    conn.execute("ALTER TABLE matches ADD COLUMN published_at TEXT")
    conn.execute("ALTER TABLE matches ADD COLUMN cluster_id INTEGER")
    conn.execute(
        """UPDATE matches SET published_at = p.published_at, cluster_id = p.cluster_id
           FROM posts AS p WHERE p.id = matches.post_id"""
    )
    conn.execute("CREATE INDEX matches_topic_published ON matches (topic, published_at, cluster_id)")
    conn.execute(
        """CREATE TRIGGER matches_follow_posts AFTER UPDATE OF published_at, cluster_id ON posts BEGIN
            UPDATE matches SET published_at = new.published_at, cluster_id = new.cluster_id WHERE post_id = new.id;
        END"""
    )
    conn.execute(
        """CREATE TRIGGER matches_take_post_fields AFTER INSERT ON matches
           WHEN new.published_at IS NULL OR new.cluster_id IS NULL BEGIN
            UPDATE matches SET (published_at, cluster_id) =
                (SELECT published_at, cluster_id FROM posts WHERE id = new.post_id)
            WHERE post_id = new.post_id AND topic = new.topic;
        END"""
    )


def _topic_fingerprints(conn: sqlite3.Connection) -> None:
    # The definition (a fingerprint of its terms) each topic's stored matches were last applied with: the daemon
    # compares it with the config's at start and points at `monitor rematch` when they differ.
    conn.execute(
        """CREATE TABLE topic_fingerprints (
            topic TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )"""
    )


def _fts_in_one_segment(conn: sqlite3.Connection) -> None:
    # Polls now merge the full-text index whenever new segments hold a quarter of it (fts.py); a store written
    # before starts from one segment (7-12 s at a million posts, once), so its searches are fast at once.
    fts.compact(conn)


def _raw_digest(conn: sqlite3.Connection) -> None:
    # A feed item's raw digest (feedparse: its bytes and what its parse inherits), so that a poll skips the
    # items stored unchanged without parsing them. Internal; NULL for posts stored before (they are parsed).
    # Read by the newest posts of a source through posts_source_published_at: no index of its own.
    conn.execute("ALTER TABLE posts ADD COLUMN raw_digest BLOB")


def _band_levels(conn: sqlite3.Connection) -> None:
    # Band rows are written behind (bands.py): a poll's go to the recent level, which moves in bulk to the middle
    # one, which moves in bulk into post_bands. Same shape as post_bands; the rows already stored stay there.
    for level in ("post_bands_recent", "post_bands_mid"):
        conn.execute(
            f"""CREATE TABLE {level} (
                band INTEGER NOT NULL,
                post_id INTEGER NOT NULL,
                PRIMARY KEY (band, post_id)
            ) WITHOUT ROWID"""
        )


def _robots(conn: sqlite3.Connection) -> None:
    # Each origin's robots.txt as last read, so that the next `monitor poll` process does not ask every host for it
    # again within the fetcher's ROBOTS_TTL (50 of a 50-host re-poll's 250 requests). A cache: internal.
    conn.execute(
        """CREATE TABLE robots (
            origin TEXT PRIMARY KEY,
            body BLOB,
            fetched_at TEXT NOT NULL
        )"""
    )


def _fetches_started_at(conn: sqlite3.Connection) -> None:
    # The daemon prunes the fetch log by time every hour: without an index on started_at alone that DELETE read the
    # whole log (at 1,000 sources a minute apart, 1.4 million rows a day) with the write lock held. Times come in
    # nearly in order, so the index grows at its end.
    conn.execute("CREATE INDEX fetches_started_at ON fetches (started_at)")


def _fetch_errors(conn: sqlite3.Connection) -> None:
    # `monitor serve`'s "Failed requests" walks the log newest first for its errors: with errors rare, that read
    # most of the log (339 ms at 5 million rows, `bench/fetch_log.py`). Only the error rows are in this index.
    conn.execute("CREATE INDEX fetches_errors ON fetches (id) WHERE status = 'error'")


# In order; a released step is never edited or removed.
STEPS: dict[str, Callable[[sqlite3.Connection], None]] = {
    "0001_initial": _initial,
    "0002_warnings_and_campaign_cluster": _warnings_and_campaign_cluster,
    "0003_deliveries_daemon_and_failure_runs": _deliveries_daemon_and_failure_runs,
    "0004_fts_found_by_analyst_tools": _fts_found_by_analyst_tools,
    "0005_matches_carry_time_and_cluster": _matches_carry_time_and_cluster,
    "0006_topic_fingerprints": _topic_fingerprints,
    "0007_fts_in_one_segment": _fts_in_one_segment,
    "0008_raw_digest": _raw_digest,
    "0009_band_levels": _band_levels,
    "0010_robots": _robots,
    "0011_fetches_started_at": _fetches_started_at,
    "0012_fetch_errors": _fetch_errors,
}


def _applied(conn: sqlite3.Connection) -> set[str]:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (MIGRATIONS_TABLE,)).fetchone() is None:
        return set()
    rows = conn.execute(f"SELECT name FROM [{MIGRATIONS_TABLE}] WHERE migration_set = ?", (MIGRATION_SET,))
    return {name for (name,) in rows}


def pending(conn: sqlite3.Connection) -> bool:
    """Whether any step has not been applied to this store yet."""
    return not set(STEPS) <= _applied(conn)


def apply(conn: sqlite3.Connection, names: Iterable[str] | None = None) -> None:
    """Apply the pending steps in order (or only those of `names`: tests build the stores of older versions).
    Each step and its record are one savepoint: a step that fails leaves no trace and stays pending. The caller
    holds the write lock (BEGIN IMMEDIATE), so one process migrates."""
    wanted = set(STEPS) if names is None else set(names)
    for statement in _MIGRATIONS_DDL:
        conn.execute(statement)
    done = _applied(conn)
    due = [name for name in STEPS if name not in done and name in wanted]
    if done and due:  # an upgrade (a new store is silent): a step may rebuild an index over a large table
        log.info("store_migrating steps=%s (on a large store this can take a minute)", ",".join(due))
    for name in due:
        conn.execute("SAVEPOINT migration")
        try:
            STEPS[name](conn)
            conn.execute(
                f"INSERT INTO [{MIGRATIONS_TABLE}] (migration_set, name, applied_at) VALUES (?, ?, ?)",
                (MIGRATION_SET, name, str(datetime.now(UTC))),  # sqlite-utils' format: 2026-07-04 12:00:00.000000+00:00
            )
        except BaseException:
            conn.execute("ROLLBACK TO migration")
            conn.execute("RELEASE migration")
            raise
        conn.execute("RELEASE migration")
