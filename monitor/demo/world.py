"""The demo's fictional media world, dated relative to `now`: a week of everyday news and the story.

Pure: does no I/O and reads no clock; takes `now`, returns the same world for the same `now` (a fixed
seed drives the everyday schedule). Everyday items follow the local working day (UTC+5): more in the
day, none at night; the story's items sit at fixed minutes before `now` (texts.py), the spike in the
last hour.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

from monitor.demo import texts

LOCAL = timezone(timedelta(hours=5), "UTC+5")  # Kazakhstan
HISTORY = timedelta(days=7)
SEED = 20260301
FIRST_MESSAGE = 4810  # the channel's first message number in the week shown
MAX_COMMENTS = 4  # per everyday article


@dataclass(frozen=True)
class Comment:
    """A comment under an article of the news site."""

    anchor: str  # the element id on the page, e.g. "c1004"
    author: str
    text: str
    published: datetime  # aware UTC


@dataclass(frozen=True)
class Article:
    """An item of a feed or an article page of the news site."""

    slug: str  # unique within its outlet; part of its address
    key: str  # the template or story item it was made from
    title: str
    text: str  # paragraphs separated by a blank line
    author: str
    published: datetime  # aware UTC
    comments: tuple[Comment, ...] = ()  # oldest first


@dataclass(frozen=True)
class Message:
    """A message of the Telegram channel."""

    number: int  # its id in the channel; grows with time
    text: str
    published: datetime  # aware UTC
    views: int
    forwarded_from: str | None = None


@dataclass(frozen=True)
class World:
    """Everything the local site serves; sequences are newest first, messages oldest first."""

    now: datetime
    herald: tuple[Article, ...]  # English outlet (RSS)
    vesti: tuple[Article, ...]  # Russian outlet (Atom)
    news: tuple[Article, ...]  # Russian/Kazakh news site with comments (HTML)
    messages: tuple[Message, ...]  # the Telegram channel


@dataclass(frozen=True)
class _Rhythm:
    """When an outlet publishes: local hours it may post at, and the chance it does at each."""

    hours: tuple[int, ...]
    chance: float


_RHYTHMS = {
    "herald": _Rhythm((8, 10, 12, 14, 16, 18, 20), 0.7),
    "vesti": _Rhythm((7, 9, 10, 12, 13, 15, 17, 19, 21), 0.7),
    "news": _Rhythm((9, 15), 0.9),
    "channel": _Rhythm((7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22), 0.5),
}


def build_world(now: datetime) -> World:
    """The week before `now` (aware), as the local site will serve it."""
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(SEED)
    herald = _outlet("herald", texts.HERALD, texts.HERALD_AUTHORS, rng, now)
    vesti = _outlet("vesti", texts.VESTI, texts.VESTI_AUTHORS, rng, now)
    news = _with_comments(_outlet("news", texts.NEWS, texts.NEWS_AUTHORS, rng, now), rng, now)
    return World(now=now, herald=herald, vesti=vesti, news=news, messages=_messages(rng, now))


def _times(rhythm: _Rhythm, rng: random.Random, now: datetime) -> list[datetime]:
    """Everyday publication times within the week before `now` (a minute or more before it)."""
    today = now.astimezone(LOCAL).replace(hour=0, minute=0, second=0)
    start = now - HISTORY + timedelta(minutes=10)
    found = []
    for day in range(8, -1, -1):
        for hour in rhythm.hours:
            when = today - timedelta(days=day) + timedelta(hours=hour, minutes=rng.randint(-25, 25))
            keep = rng.random() < rhythm.chance
            if keep and start <= when <= now - timedelta(minutes=1):
                found.append(when.astimezone(UTC).replace(second=rng.randint(0, 59)))
    return found


def _fill(text: str, rng: random.Random) -> str:
    return text.format(
        n=rng.randint(100, 999), m=rng.randint(2, 9), a=rng.randint(0, 5), b=rng.randint(0, 5), r=rng.randint(440, 520)
    )


def _outlet(
    outlet: str, templates: Sequence[texts.Template], authors: Sequence[str], rng: random.Random, now: datetime
) -> tuple[Article, ...]:
    articles = []
    for index, when in enumerate(_times(_RHYTHMS[outlet], rng, now)):
        template = templates[index % len(templates)]
        values = rng.getstate()  # title and text share their numbers
        title = _fill(template.title, rng)
        rng.setstate(values)
        text = _fill(template.text, rng)
        slug = f"{when.astimezone(LOCAL):%Y%m%d}-{template.key}-{index + 1}"
        articles.append(Article(slug, template.key, title, text, authors[index % len(authors)], when))
    for story in texts.STORY_ARTICLES:
        if story.outlet == outlet:
            when = now - timedelta(minutes=story.minutes_ago)
            slug = f"{when.astimezone(LOCAL):%Y%m%d}-{story.key}"
            articles.append(Article(slug, story.key, story.title, story.text, story.author, when))
    return tuple(sorted(articles, key=lambda a: a.published, reverse=True))


def _with_comments(articles: Sequence[Article], rng: random.Random, now: datetime) -> tuple[Article, ...]:
    """Everyday articles get a few comments from the pool; the story's articles get the story's comments."""
    story_keys = {s.key for s in texts.STORY_ARTICLES if s.outlet == "news"}
    counter = 1000
    result = []
    for article in sorted(articles, key=lambda a: a.published):
        if article.key in story_keys:
            picked = [
                (now - timedelta(minutes=c.minutes_ago), c.author, c.text)
                for c in texts.STORY_COMMENTS
                if c.article == article.key
            ]
        else:
            picked = _everyday_comments(article.published, rng, now)
        comments = []
        for when, author, text in sorted(picked):
            counter += 1
            comments.append(Comment(f"c{counter}", author, text, when))
        result.append(replace(article, comments=tuple(comments)))
    return tuple(sorted(result, key=lambda a: a.published, reverse=True))


def _everyday_comments(published: datetime, rng: random.Random, now: datetime) -> list[tuple[datetime, str, str]]:
    picked = []
    for _ in range(rng.randint(0, MAX_COMMENTS)):
        when = published + timedelta(minutes=rng.randint(5, 18 * 60))
        author, text = texts.COMMENTS[rng.randrange(len(texts.COMMENTS))]
        if when <= now - timedelta(minutes=1):
            picked.append((when.replace(second=rng.randint(0, 59)), author, text))
    return picked


def _messages(rng: random.Random, now: datetime) -> tuple[Message, ...]:
    dated: list[tuple[datetime, str, str | None]] = []
    for index, when in enumerate(_times(_RHYTHMS["channel"], rng, now)):
        template = texts.CHANNEL_TEMPLATES[index % len(texts.CHANNEL_TEMPLATES)]
        dated.append((when, _fill(template.text, rng), None))
    for story in texts.STORY_MESSAGES:
        dated.append((now - timedelta(minutes=story.minutes_ago), story.text, story.forwarded_from))
    dated.sort(key=lambda m: m[0])
    return tuple(
        Message(FIRST_MESSAGE + index, text, when, views=_views(rng, when, now), forwarded_from=source)
        for index, (when, text, source) in enumerate(dated)
    )


def _views(rng: random.Random, when: datetime, now: datetime) -> int:
    """Older messages have been seen more: a few hundred in the first hour, thousands after a day."""
    hours = max((now - when).total_seconds() / 3600, 0.1)
    return int(rng.randint(300, 900) * min(hours, 24) ** 0.5 + rng.randint(0, 99))
