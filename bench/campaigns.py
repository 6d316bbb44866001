"""Campaign alerts against organic news: precision, recall, time to alert and false campaigns per week.

    .venv/bin/python bench/campaigns.py [--seeds 5] [--voices 2,3,4,5] [--within 5m,10m,15m,30m,1h]
    .venv/bin/python bench/campaigns.py --networks 10     # also an outlet's channels, without and with `group`

Generates seeded one-week worlds with ground truth and runs the daemon's own rule (`monitor.campaigns`,
`campaign_alerts` after every arrival, as `monitor run` evaluates after each poll) for each (min_voices,
within) pair. Every cluster of a world is a story whose copies the dedupe step has already put together
(the worst case for false alarms: organic copies never split into separate clusters) and every post
matches a topic (`topics_only` filters nothing here).

Real campaigns (positives), 10 a week: one text pushed by 4-7 accounts (Telegram channels, VK accounts
of one VK source, commenters under one article) within 1-10 min of the first post; 30% with one or two
words edited; one in five followed by 1-3 late copies over the next hours.

Organic news (negatives), each of these a cluster:
- wire story, 8 a day: reprinted by 5-20 outlets; 20% of the outlets republish the wire automatically
  (delay exponential, mean 15 min), the others editorially (log-normal delay, median 2 h, sigma 0.8).
- press release, 3 a day: published by its issuer at 08:00-10:00 local, then by 5-15 sites at uniform
  times over the same morning (up to 4 h after it).
- mirror: a channel cross-posts each of its 20 posts a day to its mirror channel within 0-60 s
  (two sources, not grouped: two voices).
- network (`--networks N`, N a day): an outlet posts to its 3-6 regional channels within 0-60 s of each other,
  evaluated twice: as separate sources, and with the channels in one `group` (one voice), as a source's
  `group` key configures them. Printed in a table of its own, so the table above is the same with or without.

Posts reach the store one poll after they are published: a lag uniform over 0-5 min (a 5 min interval).
Time to alert: from a campaign's first post to the poll that raised its alert.

`--store N` also times the daemon's per-minute store read (`fresh_clusters`) on a SQLite store of N posts
over 60 days (a fifth of them copies in older clusters), against counting the same recent posts by
published time (the index range it should cost), best of 5, in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.campaigns import CampaignRule, campaign_alerts
from monitor.types import ClusterPost
from monitor.units import parse_duration

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK = timedelta(days=7)
POLL_LAG = timedelta(minutes=5)
LOCAL = timedelta(hours=5)  # local time UTC+5 for the press releases' morning


@dataclass(frozen=True)
class Story:
    """One cluster with its ground truth."""

    kind: str  # campaign | wire | press | mirror | network
    posts: tuple[ClusterPost, ...]


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.network_rng = random.Random(-seed)  # its own draws: the other stories are the same with or without it
        self.next_id = 1
        self.next_cluster = 1
        self.stories: list[Story] = []

    def story(
        self, kind: str, voices: Sequence[tuple[str, str | None, datetime, bool]], rng: random.Random | None = None
    ) -> None:
        """voices: (source, author, published_at, wording changed); `rng` draws the poll lags (default the world's)."""
        draw = rng or self.rng
        cluster = self.next_cluster
        self.next_cluster += 1
        posts = []
        for source, author, when, edited in voices:
            seen = when + draw.random() * POLL_LAG
            posts.append(
                ClusterPost(
                    id=self.next_id,
                    cluster_id=cluster,
                    source=source,
                    author=author,
                    published_at=when,
                    first_seen_at=seen,
                    url=f"https://{source}.example/{self.next_id}",
                    title="",
                    text="",
                    content_hash="edited" if edited else "original",
                    topics=("t",),
                )
            )
            self.next_id += 1
        self.stories.append(Story(kind, tuple(posts)))

    def moment(self) -> datetime:
        return START + self.rng.random() * WEEK

    def campaign(self) -> None:
        rng, t0 = self.rng, self.moment()
        accounts = rng.randint(4, 7)
        span = timedelta(minutes=rng.uniform(1, 10))
        platform = rng.choice(["telegram", "vk", "comments"])
        voices = []
        for index in range(accounts):
            when = t0 if index == 0 else t0 + rng.random() * span
            if platform == "telegram":
                source, author = f"tg-c{rng.randrange(10**6)}", None
            elif platform == "vk":
                source, author = "vk-wall", f"id{rng.randrange(10**6)}"
            else:
                source, author = "news-site-comments", f"user{rng.randrange(10**6)}"
            voices.append((source, author, when, index > 0 and rng.random() < 0.3))
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 3)):
                voices.append((f"tg-late{rng.randrange(10**6)}", None, t0 + timedelta(hours=rng.uniform(1, 6)), True))
        self.story("campaign", voices)

    def wire(self) -> None:
        rng, t0 = self.rng, self.moment()
        voices: list[tuple[str, str | None, datetime, bool]] = [("wire-agency", None, t0, False)]
        for outlet in rng.sample(range(40), rng.randint(5, 20)):
            if rng.random() < 0.2:
                delay = timedelta(minutes=rng.expovariate(1 / 15))
            else:
                delay = timedelta(hours=rng.lognormvariate(0.693, 0.8))  # median 2 h
            voices.append((f"outlet{outlet}", None, t0 + delay, rng.random() < 0.5))
        self.story("wire", voices)

    def press(self, day: int) -> None:
        rng = self.rng
        morning = START + timedelta(days=day, hours=8) - LOCAL
        t0 = morning + timedelta(minutes=rng.uniform(0, 120))
        voices: list[tuple[str, str | None, datetime, bool]] = [("issuer", None, t0, False)]
        for site in rng.sample(range(60), rng.randint(5, 15)):
            voices.append((f"site{site}", None, t0 + timedelta(minutes=rng.uniform(0, 240)), False))
        self.story("press", voices)

    def mirror(self) -> None:
        rng, t0 = self.rng, self.moment()
        self.story(
            "mirror",
            [("channel", None, t0, False), ("channel-mirror", None, t0 + timedelta(seconds=rng.uniform(0, 60)), False)],
        )

    def network(self) -> None:
        rng = self.network_rng
        t0 = START + rng.random() * WEEK
        channels = rng.randint(3, 6)
        self.story(
            "network",
            [(NETWORK[0], None, t0, False)]
            + [(name, None, t0 + timedelta(seconds=rng.uniform(0, 60)), False) for name in NETWORK[1:channels]],
            rng,
        )


NETWORK = ("outlet", "outlet-north", "outlet-south", "outlet-east", "outlet-west", "outlet-centre")
NETWORK_GROUP = dict.fromkeys(NETWORK[1:], NETWORK[0])  # `group: outlet` on each regional channel


def build(seed: int, networks: int = 0) -> World:
    world = World(seed)
    for _ in range(10):
        world.campaign()
    for day in range(7):
        for _ in range(8):
            world.wire()
        for _ in range(3):
            world.press(day)
        for _ in range(20):
            world.mirror()
        for _ in range(networks):
            world.network()
    return world


def alert_time(story: Story, rule: CampaignRule) -> datetime | None:
    """When the daemon would raise this cluster's campaign alert: after the poll that brings the crossing."""
    arrived = sorted(story.posts, key=lambda p: p.first_seen_at)
    for index, post in enumerate(arrived):
        now = post.first_seen_at
        if campaign_alerts({post.cluster_id: arrived[: index + 1]}, set(), rule, now):
            return now
    return None


@dataclass(frozen=True)
class Row:
    voices: int
    within: timedelta
    campaigns: int
    found: int
    false: dict[str, int]
    delays: list[float]  # minutes
    weeks: int

    @property
    def false_total(self) -> int:
        return sum(self.false.values())


def evaluate(worlds: list[World], voices: int, within: timedelta, groups: dict[str, str] | None = None) -> Row:
    rule = CampaignRule(min_voices=voices, within=within, topics_only=True, groups=groups or {})
    found, campaigns, delays = 0, 0, []
    false = {"wire": 0, "press": 0, "mirror": 0, "network": 0}
    for world in worlds:
        for story in world.stories:
            when = alert_time(story, rule)
            if story.kind == "campaign":
                campaigns += 1
                if when is not None:
                    found += 1
                    delays.append((when - story.posts[0].published_at).total_seconds() / 60)
            elif when is not None:
                false[story.kind] += 1
    return Row(voices, within, campaigns, found, false, delays, len(worlds))


def rows(worlds: list[World], voices: list[int], withins: list[timedelta]) -> Iterator[Row]:
    for v in voices:
        for w in withins:
            yield evaluate(worlds, v, w)


def short(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes}m"


def store_cost(posts: int) -> None:
    from monitor.store.rows import ts
    from monitor.store.sqlite import open_sqlite

    rng = random.Random(1)
    now = START + WEEK
    with tempfile.TemporaryDirectory() as folder, open_sqlite(Path(folder) / "bench.db") as store:
        rows = []
        for i in range(1, posts + 1):
            when = ts(now - timedelta(days=60) * rng.random())
            cluster = i if rng.random() < 0.8 else rng.randint(1, i)
            rows.append((i, f"s{rng.randrange(50)}", f"k{i}", "x", when, when, f"h{i}", cluster))
        with store.transaction() as conn:
            conn.executemany(
                """INSERT INTO posts (id, source, key, title, text, published_at, first_seen_at, content_hash,
                   cluster_id) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)""",
                rows,
            )
            conn.executemany(
                "INSERT INTO matches (post_id, topic, term) VALUES (?, 't', 'x')",
                [(i,) for i in range(1, posts + 1, 3)],
            )
            conn.execute("ANALYZE")
        since = now - timedelta(hours=2, minutes=10)

        def best(call: object) -> float:
            times = []
            for _ in range(5):
                start = time.perf_counter()
                call()  # type: ignore[operator]
                times.append(time.perf_counter() - start)
            return min(times)

        read = best(lambda: store.fresh_clusters(since, min_voices=4, topics_only=True))
        count = best(
            lambda: store.conn.execute("SELECT count(*) FROM posts WHERE published_at >= ?", (ts(since),)).fetchone()
        )
        recent = store.conn.execute("SELECT count(*) FROM posts WHERE published_at >= ?", (ts(since),)).fetchone()[0]
        print(
            f"\nstore read per evaluation, {posts:,} posts ({recent} in the last 2h10m): fresh_clusters "
            f"{read * 1000:.2f} ms, counting the recent posts {count * 1000:.2f} ms, ratio {read / count:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="worlds (one week each)")
    parser.add_argument("--voices", default="2,3,4,5")
    parser.add_argument("--within", default="5m,10m,15m,30m,1h")
    parser.add_argument("--store", type=int, default=0, metavar="N", help="also time the store read at N posts")
    parser.add_argument("--networks", type=int, default=0, metavar="N", help="also N network posts a day (see above)")
    args = parser.parse_args()
    worlds = [build(seed) for seed in range(1, args.seeds + 1)]
    voices, withins = [int(v) for v in args.voices.split(",")], [parse_duration(w) for w in args.within.split(",")]
    kinds: dict[str, int] = {}
    for story in worlds[0].stories:
        kinds[story.kind] = kinds.get(story.kind, 0) + 1
    print(f"{args.seeds} seeded weeks; each: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + " clusters")
    print()
    print("voices within  precision  recall  median min to alert  false/week (wire press mirror)")
    for row in rows(worlds, voices, withins):
        alerts = row.found + row.false_total
        precision = row.found / alerts if alerts else 1.0
        delay = f"{statistics.median(row.delays):.1f}" if row.delays else "-"
        per_week = {k: n / row.weeks for k, n in row.false.items()}
        print(
            f"{row.voices:>6} {short(row.within):>6}  {precision:9.3f}  {row.found / row.campaigns:6.3f}  "
            f"{delay:>19}  {row.false_total / row.weeks:10.1f} ({per_week['wire']:.1f} {per_week['press']:.1f} "
            f"{per_week['mirror']:.1f})"
        )
    if args.networks:
        networks(args.seeds, args.networks, voices, withins)
    if args.store:
        store_cost(args.store)


def networks(seeds: int, per_day: int, voices: list[int], withins: list[timedelta]) -> None:
    """False campaigns from an outlet's channels, without and with their `group`, in worlds that also hold them."""
    worlds = [build(seed, networks=per_day) for seed in range(1, seeds + 1)]
    print()
    print(f"with {per_day} network posts a day (an outlet's 3-6 channels within a minute):")
    print("voices within  recall  false/week from networks: separate sources  one group  (all other false/week)")
    for v in voices:
        for w in withins:
            apart, grouped = evaluate(worlds, v, w), evaluate(worlds, v, w, NETWORK_GROUP)
            others = grouped.false_total - grouped.false["network"]
            print(
                f"{v:>6} {short(w):>6}  {grouped.found / grouped.campaigns:6.3f}  "
                f"{apart.false['network'] / apart.weeks:41.1f}  {grouped.false['network'] / grouped.weeks:9.1f}  "
                f"({others / grouped.weeks:.1f})"
            )


if __name__ == "__main__":
    main()
