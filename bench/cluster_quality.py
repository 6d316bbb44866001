"""Clusters as the store makes them (bounded candidates included), on template-style feeds with syndicated copies.

    .venv/bin/python bench/cluster_quality.py [--feeds 200] [--items 100]

Feeds from bench/template_gen.py (about 4% of items are copies of 400 shared wire stories, with a credit line;
the rest are template sentences with names and numbers, the boilerplate that fills LSH buckets) go through
the pipeline's own stages into a fresh store (`prepare_posts`, `Store.save_poll`, one poll per feed). Printed:
the share of syndicated copies in the cluster of their story's first copy (must be 100%), the clusters that
hold copies of two different stories or a copy and an unrelated item (false merges: must be 0), clusters
among the other items, and the store's time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen
from bench.corpus_gen import NOW, terms
from monitor.collectors.feedparse import parse_feed
from monitor.match import Matcher
from monitor.pipeline import prepare_posts
from monitor.store import open_store
from monitor.types import SourceState


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    matcher = Matcher(terms(50))
    story_of: dict[str, int | None] = {}
    store_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "q.db")
        for index in range(args.feeds):
            entries = template_gen.items(index, args.items, NOW)
            story_of.update({e.guid: e.story for e in entries})
            items = parse_feed(template_gen.rss(index, entries), url=f"https://site{index}.example/rss").items
            posts = prepare_posts(items, f"site{index}", store=store, matcher=matcher, now=NOW)
            started = time.perf_counter()
            store.save_poll(
                state=SourceState(name=f"site{index}"), source_type="feed", source_url=None, posts=posts,
                fetches=(), now=NOW,
            )  # fmt: skip
            store_s += time.perf_counter() - started
        rows = [(r.url, r.cluster_id) for r in store.iter_posts()]
        store.close()
    members: dict[int | None, list[int | None]] = defaultdict(list)
    first_cluster: dict[int, int | None] = {}
    copies = in_story_cluster = 0
    for url, cluster in rows:
        story = story_of[(url or "").split("?")[0]]
        members[cluster].append(story)
        if story is not None:
            copies += 1
            first_cluster.setdefault(story, cluster)
    for url, cluster in rows:
        story = story_of[(url or "").split("?")[0]]
        if story is not None and first_cluster[story] == cluster:
            in_story_cluster += 1
    mixed = [c for c, stories in members.items() if len(set(stories)) > 1 and any(s is not None for s in stories)]
    others = [c for c, stories in members.items() if all(s is None for s in stories)]
    sizes = Counter(len(members[c]) for c in others)
    print(f"{len(rows):,} posts from {args.feeds} feeds, {copies:,} syndicated copies of {len(first_cluster)} stories")
    share = in_story_cluster / max(1, copies)
    print(f"   copies in their story's cluster: {share:.1%} ({in_story_cluster:,} of {copies:,})")
    print(f"   false merges (a cluster with two stories, or a copy with an unrelated item): {len(mixed)}")
    print(f"   other items: {sum(len(members[c]) for c in others):,} in {len(others):,} clusters "
          f"(sizes: {dict(sorted(sizes.items())[:6])})")  # fmt: skip
    print(f"   save_poll: {len(rows) / store_s:,.0f} posts/s ({store_s:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
