"""One stage of a poll: collected items -> the posts to store (new or changed), matched and signed.

Pure: does no I/O; takes items, what the store already knows about them and `now`, returns MatchedPosts.
It runs in a worker process when a batch is large (workers.py), so everything it takes and returns pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from monitor import dedupe
from monitor.match import Matcher
from monitor.normalize import content_hash, normalize, post_key
from monitor.worktypes import MatchedPost, RawItem

Known = Mapping[str, tuple[datetime, str]]  # key -> (first_seen_at, content_hash) of posts already stored


def unique_items(items: Sequence[RawItem]) -> tuple[list[RawItem], list[str]]:
    """Items in feed order with repeats (same key) dropped, the first copy winning; and their keys."""
    seen: set[str] = set()
    unique: list[RawItem] = []
    keys: list[str] = []
    for item in items:
        key = post_key(item.guid, item.url, item.title, item.text)
        if key not in seen:
            seen.add(key)
            unique.append(item)
            keys.append(key)
    return unique, keys


def prepare(
    items: Sequence[RawItem],
    source: str,
    known: Known,
    now: datetime,
    matcher: Matcher,
    keys: Sequence[str] | None = None,
) -> list[MatchedPost]:
    """Keep the items that are new or whose content changed (an unchanged one costs its key and content hash
    only); normalise, match and sign those. `keys`: the items' post keys, when the caller has them (unique_items)."""
    posts = []
    for index, item in enumerate(items):
        key = keys[index] if keys is not None else post_key(item.guid, item.url, item.title, item.text)
        seen = known.get(key) if known else None
        if seen is not None and seen[1] == content_hash(item.title, item.text):
            continue  # unchanged since the last poll: nothing to normalise, match or write
        first_seen_at = seen[0] if seen is not None else None
        posts.append(normalize(item, source=source, now=now, first_seen_at=first_seen_at, key=key))
    signatures = dedupe.signatures([(post.title, post.text) for post in posts])  # one numpy pass for the poll
    return [
        MatchedPost(post, matcher.match(post.title, post.text), signature)
        for post, signature in zip(posts, signatures, strict=True)
    ]
