"""The values that cross to the parse worker and back: a post from collector to store, and a topic's terms.

Standard-library dataclasses, unlike the rest of `monitor.types` (msgspec structs): the worker process
(monitor.workerproc) that parses a feed and prepares its posts imports this module and no third-party package
but lxml (msgspec would be 2 MiB more of a second process). `monitor.types` re-exports them.
Change a value with `dataclasses.replace`, never by mutation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RawItem:
    """One post as a collector read it, before normalisation."""

    guid: str | None  # the item's own identifier (RSS guid, Atom id, status id), if it has one
    url: str | None  # absolute link to the item, as published
    title: str  # plain text, may be empty
    text: str  # plain text (HTML already turned into text), may be empty
    author: str | None = None
    published: datetime | None = None  # aware UTC; None when the source gives no usable date
    parent_ref: str | None = None  # comments: the guid (else url) of the article item they belong to
    extra: tuple[tuple[str, str], ...] = ()  # collector-specific facts (views, forwarded_from, ...)
    raw_digest: bytes | None = None  # feeds: digest of the item's raw bytes and context (feedparse), 16 bytes


@dataclass(frozen=True)
class Post:
    """A normalised post, ready to match and store; identity is (source, key)."""

    source: str  # the configured source name
    key: str  # guid when the item has one, else its canonical URL, else a content hash
    url: str | None  # canonical URL
    title: str
    text: str
    author: str | None
    published_at: datetime  # aware UTC; missing or future times become first_seen_at
    first_seen_at: datetime  # aware UTC; the time of the poll that first saw it
    content_hash: str  # hex digest of the normalised title + text: detects edits and exact copies
    parent_key: str | None = None  # comments: key of the article post in the same source
    extra: tuple[tuple[str, str], ...] = ()  # collector-specific facts (views, forwarded_from ...), stored as JSON
    raw_digest: bytes | None = None  # the item's raw digest (feeds): a later poll skips it unparsed while unchanged


@dataclass(frozen=True)
class Match:
    """One topic matched by one post, with the configured term that matched first."""

    topic: str
    term: str


@dataclass(frozen=True)
class MatchedPost:
    """A post with its topic matches and its near-duplicate signature, as the store receives it."""

    post: Post
    matches: tuple[Match, ...]
    signature: bytes  # MinHash signature from `dedupe.signature`; empty when the text is too short


@dataclass(frozen=True)
class TopicSpec:
    """One configured topic: a post matches if any `any` term, every `all` term and no `none` term match."""

    name: str
    any: tuple[str, ...]
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    transliterate: bool = False  # Cyrillic terms also match their Latin renderings (Kazakh and Russian)
