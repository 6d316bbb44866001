"""`monitor serve`: the store in Datasette, read-only, with table docs and canned queries.

`metadata(config)` is the Datasette metadata (pure: it does no I/O): a description of every table, view and
column of the store, facets and sort orders, and canned queries an analyst starts from. `monitor serve
--metadata FILE` writes it as JSON for a Datasette run by hand:

    datasette serve storage/monitor.db --metadata metadata.json

Read-only, not immutable. The daemon writes the store while Datasette reads it, so Datasette opens it as a
*mutable* database, whose connections are `file:...?mode=ro`: SQLite refuses every write through them,
and each query sees the latest committed poll (WAL: readers never block the daemon's writes, nor it them).
Datasette's `-i`/immutable mode would be wrong here: it opens the file with `immutable=1`, which tells
SQLite the file can never change, so it skips locking and change detection. On a file that another
process writes, SQLite documents that this gives stale or wrong results and even SQLITE_CORRUPT errors,
and Datasette caches row counts and offers a download of a file that is half-way through a write.

Datasette runs in this process under uvicorn, on a socket bound here first (a port in use is a clear
error, not a traceback). Only requests naming localhost, the address bound or the `--host` given in their
Host header reach it (`HostCheck`: DNS rebinding protection); others get 400. SIGINT/SIGTERM stop it
cleanly (requests in flight get a few seconds) and `serve_store` returns 0. Datasette and uvicorn are
imported only when serving: they are the optional extra `monitor[web]`, and `--metadata` works without them.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import re
import signal
import socket
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

from monitor import links
from monitor.config import Config
from monitor.exceptions import MonitorError
from monitor.store import open_store
from monitor.types import StoreURL

log = logging.getLogger("monitor.serve")

EXTRA_HINT = "pip install 'monitor[web]'"
GRACEFUL_SHUTDOWN_S = 5  # requests in flight when a signal comes get this long to finish
# Datasette settings: a year of posts needs more than the default 1 s for FTS and joins (a reader never
# blocks the daemon's writes in WAL mode); long post texts are cut in table views (full text on the row page).
SETTINGS: dict[str, Any] = {"sql_time_limit_ms": 5000, "truncate_cells_html": 280}


# ---------------------------------------------------------------------------------------------- documentation
# Every table, view and column of the store (monitor/store/sqlite/schema.py); tests/test_serve.py fails when one
# is missing.
# The band levels (store/sqlite/bands.py) share post_bands' columns.
_BAND_COLUMNS = {"band": "An LSH band key.", "post_id": "A post with that band (posts.id)."}

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "posts": (
        "Every post once; its identity is (source, key). Comments are posts whose parent_id is their article.",
        {
            "id": "Integer primary key.",
            "source": "The configured source name.",
            "key": "The item's GUID/ID where it has one, else its canonical URL, else a hash of its content.",
            "url": "Canonical URL: lower-case scheme and host, no default port, no fragment, tracking parameters "
            "(utm_*, fbclid, gclid, yclid, ...) removed, query sorted.",
            "title": "Plain-text title (HTML turned into text).",
            "text": "Plain-text body (HTML turned into text).",
            "author": "As the source gives it.",
            "published_at": "The source's time (ISO 8601 UTC); a post without one, or with one in the future, "
            "gets first_seen_at.",
            "first_seen_at": "When a poll first stored it (ISO 8601 UTC); kept when the post is edited.",
            "updated_at": "When an edit was last seen (null if never edited).",
            "content_hash": "Hash of the normalised title and text; a changed hash is an edit.",
            "cluster_id": "The story: posts with identical or near-identical text, across all sources, share it; "
            "it is the id of the story's first post.",
            "parent_id": "For a comment: the id of the article it was posted under.",
            "extra": "What the collector kept beside the post, as JSON (e.g. views, forwards, score).",
            "raw_digest": "Internal: a digest of the feed item the post was parsed from; a poll skips an item "
            "whose digest it finds (NULL for posts stored before it was kept, and for other source types).",
        },
    ),
    "matches": (
        "One row per (post, topic): the post matched the topic's terms. An edited post's matches are recomputed.",
        {
            "post_id": "The matching post (posts.id).",
            "topic": "The configured topic name.",
            "term": "The configured term that matched first.",
            "published_at": "The post's posts.published_at, kept beside the match so counts by time read no posts.",
            "cluster_id": "The post's posts.cluster_id (its near-duplicate cluster), kept beside the match likewise.",
        },
    ),
    "posts_fts": (
        "Full-text index (FTS5) over posts' title and text, kept in step with posts; tokenizer unicode61 "
        'remove_diacritics 2 (case folded in every script). Query syntax: word*, "a phrase", OR, NOT, NEAR.',
        {
            "title": "posts.title, indexed.",
            "text": "posts.text, indexed.",
        },
    ),
    "alerts": (
        "The outbox: every alert, written before it is delivered. kind is spike, health, digest or campaign; "
        "status is pending, sent or failed, the summary of its deliveries (one per channel, table deliveries).",
        {
            "id": "Integer primary key.",
            "kind": "spike (a topic's activity), health (a source broke or recovered), digest (daily summary) or "
            "campaign (a near-duplicate cluster spread by many voices).",
            "topic": "The topic of a spike alert.",
            "source": "The source of a health alert.",
            "window_start": "Start of the counted window (ISO 8601 UTC).",
            "window_end": "End of the counted window (ISO 8601 UTC).",
            "count": "Matching posts in the window (health: consecutive failed polls).",
            "expected": "The count the baseline expected for the window.",
            "score": "How improbable the count is against the baseline (higher: more surprising).",
            "created_at": "When the alert was raised (ISO 8601 UTC).",
            "status": "sent when every delivery is sent, failed when one gave up, else pending.",
            "attempts": "Delivery attempts so far (the most any channel made).",
            "sent_at": "When the last channel accepted it (once every delivery is sent).",
            "error": "The last delivery error (per channel when there are several).",
            "next_attempt_at": "When delivery is retried (backoff after a failure).",
            "message_id": "The email's Message-ID, fixed when its delivery is first claimed: a resend reuses it.",
            "details": "JSON: health alerts {state, type, failures, error, since}; digests {day}.",
            "cluster_id": "The near-duplicate cluster (posts.cluster_id) a campaign alert is about.",
        },
    ),
    "deliveries": (
        "One row per alert and channel (email, or a notify channel's name): each is delivered exactly once. "
        "A sender claims a row (claimed_by, claim_until) before sending it.",
        {
            "id": "Integer primary key.",
            "alert_id": "The alert (alerts.id).",
            "channel": "email, or the name of an alerts.notify channel.",
            "status": "pending, sent or failed.",
            "attempts": "Sends tried on this channel.",
            "next_attempt_at": "When a failed send is tried again (backoff: 1, 2, 4 ... minutes, up to an hour).",
            "sent_at": "When the channel accepted it (ISO 8601 UTC).",
            "error": "The last try's error, or recipients the server refused.",
            "message_id": "The message's ID (the email's Message-ID), fixed at the first claim.",
            "claimed_by": "The process sending it now, as host:pid:start (null when nobody is).",
            "claim_until": "The sender's lease: after it, or once that process has died, another may send it.",
        },
    ),
    "daemon": (
        "The `monitor run` holding this store (one daemon per store), and its heartbeat.",
        {
            "id": "Always 1: one row.",
            "holder": "The daemon process, as host:pid:start.",
            "started_at": "When it started (ISO 8601 UTC).",
            "heartbeat_at": "Its last heartbeat, written every minute (ISO 8601 UTC).",
        },
    ),
    "topic_fingerprints": (
        "The definition each topic's stored matches follow (`monitor rematch` records it; the daemon compares it).",
        {
            "topic": "The topic's name.",
            "fingerprint": "A hash of the topic's terms and options when its matches were last applied in full.",
            "applied_at": "When (ISO 8601 UTC).",
        },
    ),
    "robots": (
        "Each site's robots.txt as last read: a poll within 12 hours of it obeys it without asking the site again.",
        {
            "origin": "scheme://host[:port] of the site.",
            "body": "The file as served (at most 512,000 bytes); NULL when the site has none (it answered 4xx).",
            "fetched_at": "When it was read (ISO 8601 UTC).",
        },
    ),
    "fetches": (
        "Every HTTP request a poll made, with its outcome.",
        {
            "id": "Integer primary key.",
            "source": "The configured source name.",
            "url": "The address requested.",
            "started_at": "When the request started (ISO 8601 UTC).",
            "status": "ok, not_modified (conditional GET), error or skipped.",
            "http_status": "The server's HTTP status code, if it answered.",
            "bytes": "Response bytes read (after decompression).",
            "duration_ms": "How long the request took.",
            "items": "Items the response held.",
            "new_posts": "Posts stored for the first time from this response.",
            "error": "What went wrong, for status error or skipped.",
            "warning": "What was kept despite a fault: items cut at a cap, a feed read leniently, bad bytes replaced.",
        },
    ),
    "sources": (
        "Per-source state: conditional-GET validators, health, backoff.",
        {
            "name": "The configured source name.",
            "type": "Source type: feed, html, telegram, mastodon, reddit, vk.",
            "url": "The source's address.",
            "etag": "ETag of the last response (conditional GET).",
            "last_modified": "Last-Modified of the last response (conditional GET).",
            "last_ok_at": "Last successful poll (ISO 8601 UTC).",
            "last_error": "The last poll's error.",
            "last_error_at": "When the last error happened.",
            "failures": "Consecutive failed polls (0 when healthy).",
            "next_poll_at": "Earliest next poll (backoff after failures).",
            "retry_at": "The server's Retry-After or rate limit.",
            "cursor": "Collector paging state.",
            "last_post_at": "Publication time of the newest post seen.",
            "health": "A warning about the source, e.g. a selector that matched nothing.",
            "warnings": "JSON list: the last successful poll's warnings (also on its fetches row).",
            "updated_at": "When this row last changed.",
            "failing_since": "The first failure of the current (or last) run of consecutive failed polls.",
            "last_run_failures": "How many polls in a row had failed before the source last worked again.",
        },
    ),
    "post_signatures": (
        "Internal: the near-duplicate index, one MinHash signature per post.",
        {"post_id": "The post (posts.id).", "signature": "MinHash signature of the post's word set."},
    ),
    "post_bands": ("Internal: the near-duplicate index, LSH band keys of each post's signature.", _BAND_COLUMNS),
    "post_bands_recent": (
        "Internal: the newest posts' rows of post_bands, written there first and moved on in bulk.",
        _BAND_COLUMNS,
    ),
    "post_bands_mid": (
        "Internal: rows of post_bands moved from post_bands_recent, moved on into post_bands in bulk.",
        _BAND_COLUMNS,
    ),
    "_sqlite_migrations": (
        "Internal: which schema migrations have been applied (sqlite-utils).",
        {
            "id": "Integer primary key.",
            "migration_set": "The migration set, `monitor`.",
            "name": "The migration step.",
            "applied_at": "When it ran.",
        },
    ),
    "topic_hourly": (
        "Matching posts and distinct stories per topic per hour (UTC, by published time).",
        {
            "topic": "The configured topic name.",
            "hour": "Start of the hour, ISO 8601 UTC.",
            "posts": "Matching posts published in that hour.",
            "stories": "Distinct stories (cluster_id) among them.",
        },
    ),
    "topic_daily": (
        "Matching posts and distinct stories per topic per day (UTC, by published time).",
        {
            "topic": "The configured topic name.",
            "day": "The day, YYYY-MM-DD (UTC).",
            "posts": "Matching posts published that day.",
            "stories": "Distinct stories (cluster_id) among them.",
        },
    ),
    "post_topics": (
        "Each matching post with its topics as a JSON list.",
        {
            "id": "The post (posts.id).",
            "source": "The configured source name.",
            "url": "Canonical URL.",
            "title": "Plain-text title.",
            "published_at": "The source's time (ISO 8601 UTC).",
            "cluster_id": "The story the post belongs to.",
            "topics": "The topics it matched, a JSON list.",
        },
    ),
}

# How Datasette shows each table or view by default; tables not named here get their defaults.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    # fts_table is named because Datasette does not detect an index declared with content='posts'
    "posts": {
        "sort_desc": "published_at",
        "facets": ["source"],
        "label_column": "title",
        "fts_table": "posts_fts",
        "fts_pk": "id",
    },
    "matches": {"sort_desc": "post_id", "facets": ["topic", "term"]},
    "alerts": {"sort_desc": "id", "facets": ["kind", "status", "topic"]},
    "fetches": {"sort_desc": "id", "facets": ["status", "source"]},
    "sources": {"sort": "name", "facets": ["type"], "label_column": "name"},
    "topic_hourly": {"sort_desc": "hour", "facets": ["topic"]},
    "topic_daily": {"sort_desc": "day", "facets": ["topic"]},
    "post_topics": {"sort_desc": "published_at", "facets": ["source", {"array": "topics"}]},
    "post_signatures": {"hidden": True},
    "post_bands": {"hidden": True},
    "post_bands_recent": {"hidden": True},
    "post_bands_mid": {"hidden": True},
    "_sqlite_migrations": {"hidden": True},
}


# ---------------------------------------------------------------------------------------------- canned queries
def _sql(text: str) -> str:
    return textwrap.dedent(text).strip()


# name -> (title, description, SQL). `:topic`, `:since` and the like are optional where the SQL says
# `(:x = '' OR ...)`: Datasette passes a blank string for a parameter the form left empty.
QUERIES: dict[str, tuple[str, str, str]] = {
    "latest_matches": (
        "Latest matches per topic",
        "The newest posts that matched a topic.",
        _sql("""
            SELECT p.published_at, m.topic, p.source, p.title, p.url, m.term, p.cluster_id AS story, p.id AS post_id
            FROM matches m JOIN posts p ON p.id = m.post_id
            WHERE (:topic = '' OR m.topic = :topic)
            ORDER BY p.published_at DESC, p.id DESC
            LIMIT 200
        """),
    ),
    "hourly_counts": (
        "Hourly counts",
        "Matching posts and distinct stories per topic per hour (UTC), newest first.",
        _sql("""
            SELECT topic, hour, posts, stories
            FROM topic_hourly
            WHERE (:topic = '' OR topic = :topic) AND (:since = '' OR hour >= :since)
            ORDER BY hour DESC, topic
            LIMIT 1000
        """),
    ),
    "daily_counts": (
        "Daily counts",
        "Matching posts and distinct stories per topic per day (UTC), newest first.",
        _sql("""
            SELECT topic, day, posts, stories
            FROM topic_daily
            WHERE (:topic = '' OR topic = :topic) AND (:since = '' OR day >= :since)
            ORDER BY day DESC, topic
            LIMIT 1000
        """),
    ),
    "recent_alerts": (
        "Alerts",
        "Every alert with its delivery status, newest first.",
        _sql("""
            SELECT id, created_at, kind, topic, source, window_start, window_end, count,
                   round(expected, 1) AS expected, round(score, 2) AS score, status, attempts, sent_at, error
            FROM alerts
            WHERE (:status = '' OR status = :status)
            ORDER BY id DESC
            LIMIT 500
        """),
    ),
    "alert_posts": (
        "Posts of one alert",
        "The posts a spike alert counted: its topic's matches published in its window, oldest first (the link "
        "in alert messages when alerts.link_base is set).",
        _sql("""
            SELECT p.published_at, p.source, p.title, p.url, m.term, p.cluster_id AS story, p.id AS post_id
            FROM alerts a JOIN matches m ON m.topic = a.topic JOIN posts p ON p.id = m.post_id
            WHERE a.id = :alert_id AND p.published_at >= a.window_start AND p.published_at <= a.window_end
            ORDER BY p.published_at, p.id
            LIMIT 500
        """),
    ),
    "undelivered_alerts": (
        "Alerts not (yet) delivered",
        "Pending alerts (with their next attempt) and failed ones (with the last delivery error).",
        _sql("""
            SELECT id, created_at, kind, topic, source, count, status, attempts, next_attempt_at, error
            FROM alerts
            WHERE status != 'sent'
            ORDER BY id DESC
        """),
    ),
    "top_sources": (
        "Top sources",
        "Sources with the most matching posts (and distinct stories) for a topic since a date.",
        _sql("""
            SELECT p.source, count(DISTINCT p.id) AS posts, count(DISTINCT p.cluster_id) AS stories,
                   min(p.published_at) AS first, max(p.published_at) AS latest
            FROM matches m JOIN posts p ON p.id = m.post_id
            WHERE (:topic = '' OR m.topic = :topic) AND (:since = '' OR p.published_at >= :since)
            GROUP BY p.source
            ORDER BY posts DESC, p.source
            LIMIT 100
        """),
    ),
    "shared_stories": (
        "Stories carried by several sources",
        "Stories (near-identical posts) published by more than one source, newest first, with who was first "
        "(with a topic: stories with a post matching it).",
        _sql("""
            SELECT p.cluster_id AS story, count(DISTINCT p.source) AS sources, count(*) AS copies,
                   min(p.published_at) AS first_published, max(p.published_at) AS last_published,
                   (SELECT f.source FROM posts f WHERE f.cluster_id = p.cluster_id
                    ORDER BY f.published_at, f.id LIMIT 1) AS first_source,
                   group_concat(DISTINCT p.source) AS carried_by,
                   (SELECT f.title FROM posts f WHERE f.id = p.cluster_id) AS title
            FROM posts p
            WHERE p.cluster_id IS NOT NULL
              AND (:topic = '' OR p.cluster_id IN (SELECT q.cluster_id FROM matches m JOIN posts q ON q.id = m.post_id
                                                   WHERE m.topic = :topic))
              AND (:since = '' OR p.published_at >= :since)
            GROUP BY p.cluster_id
            HAVING count(DISTINCT p.source) > 1
            ORDER BY first_published DESC
            LIMIT 200
        """),
    ),
    "story_posts": (
        "Posts of one story",
        "Every copy of a story, in the order the sources published it.",
        _sql("""
            SELECT p.published_at, p.source, p.title, p.url, p.author, p.id AS post_id
            FROM posts p
            WHERE p.cluster_id = :story
            ORDER BY p.published_at, p.id
        """),
    ),
    "search": (
        "Full-text search",
        "Posts whose title or text match, newest first, with the match in [brackets].",
        _sql("""
            SELECT p.published_at, p.source, p.title, snippet(posts_fts, -1, '[', ']', '…', 16) AS snippet, p.url,
                   (SELECT group_concat(m.topic, ', ') FROM matches m WHERE m.post_id = p.id) AS topics,
                   p.id AS post_id
            FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid
            WHERE :q != '' AND posts_fts MATCH :q
            ORDER BY p.published_at DESC, p.id DESC
            LIMIT 200
        """),
    ),
    "most_discussed": (
        "Most discussed articles",
        "Articles with the most comments collected under them (comments published since a date).",
        _sql("""
            SELECT a.id AS post_id, a.published_at, a.source, a.title, count(*) AS comments,
                   max(c.published_at) AS latest_comment
            FROM posts c JOIN posts a ON a.id = c.parent_id
            WHERE (:since = '' OR c.published_at >= :since)
            GROUP BY a.id
            ORDER BY comments DESC, a.published_at DESC
            LIMIT 100
        """),
    ),
    "comments": (
        "Comments under an article",
        "The comments collected under one article, oldest first.",
        _sql("""
            SELECT c.published_at, c.author, c.text, c.url, c.id AS post_id
            FROM posts c
            WHERE c.parent_id = :post_id
            ORDER BY c.published_at, c.id
        """),
    ),
    "topic_terms": (
        "Which terms match",
        "Matches per configured term: tune topics by seeing which terms bring posts in.",
        _sql("""
            SELECT m.topic, m.term, count(*) AS posts, max(p.published_at) AS latest
            FROM matches m JOIN posts p ON p.id = m.post_id
            WHERE (:topic = '' OR m.topic = :topic)
            GROUP BY m.topic, m.term
            ORDER BY m.topic, posts DESC
        """),
    ),
    "failing_sources": (
        "Failing sources",
        "Sources whose last polls failed (with the last error) or that carry a health warning.",
        _sql("""
            SELECT name, type, failures, last_ok_at, last_error_at, last_error, health, next_poll_at, retry_at, url
            FROM sources
            WHERE failures > 0 OR coalesce(health, '') != ''
            ORDER BY failures DESC, name
        """),
    ),
    "source_status": (
        "Every source's status",
        "Per source: last success, consecutive failures, newest post and posts stored. A source whose newest "
        "post is old may be broken silently (a site redesign).",
        _sql("""
            SELECT s.name, s.type, s.last_ok_at, s.failures, s.last_error, s.last_post_at,
                   (SELECT count(*) FROM posts p WHERE p.source = s.name) AS posts
            FROM sources s
            ORDER BY s.name
        """),
    ),
    "fetch_errors": (
        "Failed requests",
        "The latest failed requests, newest first.",
        _sql("""
            SELECT started_at, source, url, http_status, duration_ms, error
            FROM fetches
            WHERE status = 'error' AND (:source = '' OR source = :source)
            ORDER BY id DESC
            LIMIT 500
        """),
    ),
}


# What each canned-query parameter takes; `(:x = '' OR ...)` in the SQL makes x optional.
PARAMETERS = {
    "topic": "a configured topic",
    "since": "an ISO date or time (UTC), e.g. 2026-03-01 or 2026-03-01T09",
    "status": "pending, sent or failed",
    "source": "a configured source name",
    "story": "a story's cluster_id (see shared_stories)",
    "post_id": "the article's id (posts.id)",
    "alert_id": "the alert's id (alerts.id)",
    "q": 'FTS5 syntax: whole words, case-insensitive in every script, word* for prefixes (inflections), "a phrase", '
    "OR, NOT",
}


def database_name(config: Config) -> str:
    """The name Datasette gives the store (the file's stem): its URL path and its key in the metadata."""
    return links.database_name(store_file(config))


def store_file(config: Config) -> Path:
    """The SQLite file to serve. Datasette reads SQLite files only, so a PostgreSQL store is refused, saying so."""
    if isinstance(config.store, StoreURL):
        raise MonitorError(
            f"`monitor serve` serves a SQLite store only, and this config's store is {config.store}: "
            "query PostgreSQL with psql or any SQL client (the same tables and views), or serve a SQLite copy"
        )
    return config.store


def _topic_links(config: Config) -> str:
    links = [f'<a href="?topic={quote(t.name, safe="")}">{html.escape(t.name)}</a>' for t in config.topics]
    return "Topics: " + " · ".join(links) + ' · <a href="?topic=">all</a>'


def parameters(sql: str) -> list[str]:
    """The named parameters of a canned query, in order of first use."""
    return list(dict.fromkeys(re.findall(r"(?<!:):(\w+)", sql)))


def _parameter_help(sql: str) -> str:
    optional = set(re.findall(r"\(:(\w+) = ''", sql))
    notes = [
        f"{name}: {PARAMETERS[name]}" + (", or blank for all" if name in optional else "") for name in parameters(sql)
    ]
    return "; ".join(notes) + "." if notes else ""


def _query(config: Config, title: str, description: str, sql: str) -> dict[str, Any]:
    query: dict[str, Any] = {"title": title, "sql": sql}
    help_text = _parameter_help(sql)
    if "topic" in parameters(sql):  # links for the configured topics, so nobody has to remember their spelling
        query["description_html"] = (
            f"<p>{html.escape(description)}</p><p>{html.escape(help_text)}</p><p>{_topic_links(config)}</p>"
        )
    else:
        query["description"] = f"{description} {help_text}".strip()
    return query


def _topic_summary(config: Config) -> str:
    return "; ".join(f"{t.name} ({', '.join(t.any)})" for t in config.topics)


def metadata(config: Config) -> dict[str, Any]:
    """The Datasette metadata: docs of every table, view and column, facets, canned queries. Does no I/O."""
    tables = {
        name: {"description": description, "columns": dict(columns), **TABLE_OPTIONS.get(name, {})}
        for name, (description, columns) in TABLES.items()
    }
    queries = {name: _query(config, *spec) for name, spec in QUERIES.items()}
    return {
        "title": "monitor",
        "description": "Posts that monitor collected from public media, their topic matches, alerts and the "
        "health of every source. Read-only: the daemon keeps writing while you read. Times are ISO 8601 UTC.",
        "databases": {
            database_name(config): {
                "description": f"The store {store_file(config).name}. Configured topics: {_topic_summary(config)}.",
                "tables": tables,
                "queries": queries,
            }
        },
    }


def write_metadata(config: Config, path: Path) -> None:
    try:
        path.write_text(json.dumps(metadata(config), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------------------------- serving
def serve_store(config: Config, *, host: str, port: int, metadata_only: Path | None) -> int:
    """`monitor serve`: write the metadata file and return 0, or serve the store read-only until a signal."""
    store_file(config)  # before anything else: a PostgreSQL store cannot be served
    if metadata_only is not None:
        write_metadata(config, metadata_only)
        sys.stdout.write(f"wrote {metadata_only}: {len(TABLES)} tables and views, {len(QUERIES)} canned queries\n")
        return 0
    try:  # the optional extra, imported only to serve: `--metadata` and every other command work without it
        import uvicorn  # noqa: PLC0415
        from datasette.app import Datasette  # noqa: PLC0415
    except ImportError as exc:
        raise MonitorError(f"`monitor serve` needs Datasette, the optional extra: {EXTRA_HINT} ({exc})") from exc
    _check_store(store_file(config))
    sock = _listen(host, port)
    datasette = Datasette(files=[str(store_file(config))], metadata=metadata(config), settings=SETTINGS)
    app = HostCheck(datasette.app(), host_rule(host, sock.getsockname()[0]))
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    )
    if logging.getLogger().getEffectiveLevel() >= logging.INFO:  # uvicorn's start/stop chatter only with -v
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return _run(datasette, server, sock, database_name(config))


def _check_store(path: Path) -> None:
    """Fail now, with the path, if there is no readable monitor store (read-only: serving never creates one)."""
    open_store(path, create=False, readonly=True).close()


def _listen(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn: a port in use is then an error message, not a log line and exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise MonitorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


# ---------------------------------------------------------------------------------------------- the Host check
# DNS rebinding: a page on evil.example can make its own name resolve to 127.0.0.1 and then read, from the
# browser of someone on this machine, whatever answers there. Its requests still say `Host: evil.example`:
# answering only to the names this server is meant to be reached by closes that door.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
_HOST_HEADER = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::\d{1,5})?$")


@dataclass(frozen=True)
class HostRule:
    """Which Host headers the server answers: names and addresses (lower case, no port), and whether any
    IP address will do (a wildcard bind: rebinding needs a name, so an address in the header is safe)."""

    names: frozenset[str]
    any_address: bool = False

    def allows(self, header: str | None) -> bool:
        if header is None:  # HTTP/1.0 without a Host: no browser sends that, and rebinding needs the name
            return True
        host = host_of(header)
        if host is None:
            return False
        if host in self.names or host.endswith(".localhost"):  # RFC 6761: *.localhost is loopback
            return True
        return self.any_address and _is_address(host)


def host_of(header: str) -> str | None:
    """`Example.ORG.:8001` -> `example.org`, `[::1]:8001` -> `::1`; None for what is not a host."""
    match = _HOST_HEADER.match(header.strip())
    if not match:
        return None
    return (match["ipv6"] or match["name"]).lower().rstrip(".")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_rule(host_option: str, bound: str) -> HostRule:
    """Localhost names, the address bound and the `--host` given (a name there is a name to answer to); on a
    wildcard bind (`--host 0.0.0.0`) also any IP address and this machine's host name."""
    names = set(LOCAL_NAMES) | {bound.lower(), host_option.strip().strip("[]").lower().rstrip(".")}
    if host_option.strip() in WILDCARDS or bound in WILDCARDS:
        names.add(socket.gethostname().lower())
        return HostRule(frozenset(names - WILDCARDS), any_address=True)
    return HostRule(frozenset(names - WILDCARDS))


class HostCheck:
    """ASGI middleware: a request whose Host header the rule refuses gets 400 and never reaches Datasette."""

    REFUSED = (
        b"This server does not answer to that Host name (DNS rebinding protection).\n"
        b"To reach it under another name, start it with: monitor serve --host NAME\n"
    )

    def __init__(self, app: Any, rule: HostRule) -> None:
        self.app = app
        self.rule = rule
        self.logged: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        values = [value for key, value in scope.get("headers", ()) if key.lower() == b"host"]
        header = values[0].decode("latin-1") if len(values) == 1 else (None if not values else "")
        if self.rule.allows(header):
            await self.app(scope, receive, send)
            return
        if header not in self.logged and len(self.logged) < 100:  # one line per name, never a flood
            self.logged.add(header or "")
            log.warning("refused_host host=%r (not localhost, nor the address served: see --host)", header)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(self.REFUSED)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.REFUSED})


def _url(sock: socket.socket, path: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{quote(path)}"


def _is_loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def _run(datasette: Any, server: Any, sock: socket.socket, name: str) -> int:
    """Serve until SIGINT/SIGTERM. uvicorn handles the signals while it serves (graceful shutdown) and raises
    them again once stopped; the handlers installed here catch that re-raise, and a signal that comes
    during start-up, so that a stop is a clean return 0 rather than KeyboardInterrupt or death by signal."""
    stops: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stops.append(signum)
        server.should_exit = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(_serve(datasette, server, sock, name))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    log.info("stopped serve signal=%s", signal.Signals(stops[0]).name if stops else "none")
    return 0


async def _serve(datasette: Any, server: Any, sock: socket.socket, name: str) -> None:
    await datasette.invoke_startup()
    database = datasette.get_database(name)
    url = _url(sock, name)
    log.info("serving url=%s store=%s mode=read-only", url, database.path)
    if not _is_loopback(sock):
        log.warning("serving to the network host=%s: anyone who reaches it can read the store", sock.getsockname()[0])
    sys.stdout.write(f"Datasette: {url}  (read-only; Ctrl-C stops)\n")
    sys.stdout.flush()
    await server.serve(sockets=[sock])
