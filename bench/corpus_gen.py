"""Generated feeds and terms for the benchmarks: multilingual posts of realistic length, 1,000 terms.

Deterministic (seeded), so runs compare. Not a test fixture: the tests use the real corpus.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from monitor.types import TopicSpec

SYLLABLES = {
    "en": [
        "ba",
        "be",
        "ri",
        "con",
        "tion",
        "al",
        "de",
        "pro",
        "ment",
        "ing",
        "er",
        "re",
        "sta",
        "ter",
        "ple",
        "cil",
        "gov",
        "na",
        "lo",
        "ca",
        "ci",
        "ty",
        "re",
        "port",
    ],
    "ru": [
        "ка",
        "ра",
        "со",
        "ве",
        "то",
        "ни",
        "ро",
        "ла",
        "ст",
        "ва",
        "ми",
        "пре",
        "об",
        "на",
        "ть",
        "ск",
        "ий",
        "ого",
        "ов",
        "ен",
        "де",
        "ли",
        "по",
        "за",
    ],
    "kk": [
        "қа",
        "ра",
        "ке",
        "ңе",
        "сі",
        "лы",
        "ғы",
        "ар",
        "ды",
        "ту",
        "ме",
        "ле",
        "бі",
        "ші",
        "ті",
        "ұл",
        "өз",
        "ә",
        "ге",
        "жа",
        "са",
        "та",
        "на",
    ],
}
LONG = 1  # multiplies the paragraphs per item (bench --long sets 4: items of about 2 KB)
VOCAB_SIZE = 20_000  # distinct words per language; word frequencies follow Zipf's law as in real text
SIGNAL = [
    "separatism",
    "separatists",
    "сепаратизм",
    "сепаратисты",
    "People's Council",
    "Народный совет",
    "Халық кеңесі",
]


def _vocabulary(lang: str, seed: int = 3) -> list[str]:
    rng = random.Random(f"{lang}-{seed}")
    words: dict[str, None] = {}
    while len(words) < VOCAB_SIZE:
        words["".join(rng.choice(SYLLABLES[lang]) for _ in range(rng.randint(1, 4)))] = None
    return list(words)


VOCAB = {lang: _vocabulary(lang) for lang in SYLLABLES}
_WEIGHTS = [1 / (rank + 1) for rank in range(VOCAB_SIZE)]


def terms(count: int = 1000, seed: int = 1) -> list[TopicSpec]:
    """`count` terms (words, prefixes, phrases; Latin, Cyrillic, Kazakh) in topics of 20 terms.

    Like a real watch list, most terms are uncommon words (ranks 2,000-20,000), so most posts match nothing."""
    rng = random.Random(seed)
    made: list[str] = [
        "separatism",
        "separatist*",
        "сепаратизм*",
        "сепаратист*",
        "People's Council*",
        "Народн* совет*",
        "Халық кеңес*",
    ]
    while len(made) < count:
        vocab = VOCAB[rng.choice(list(VOCAB))]
        word = vocab[rng.randint(2000, VOCAB_SIZE - 1)]
        kind = rng.random()
        if kind < 0.5:
            made.append(word)
        elif kind < 0.7 and len(word) >= 7:
            made.append(word[:-2] + "*")
        else:
            made.append(f"{word} {vocab[rng.randint(0, 500)]}")
    return [TopicSpec(name=f"topic-{i // 20}", any=tuple(made[i : i + 20])) for i in range(0, count, 20)]


def post_text(rng: random.Random, words: int) -> str:
    lang = rng.choice(list(VOCAB))
    out = rng.choices(VOCAB[lang], weights=_WEIGHTS, k=words)
    if rng.random() < 0.05:
        out.insert(rng.randrange(len(out)), rng.choice(SIGNAL))
    return " ".join(out).capitalize() + "."


def feed(index: int, items: int, now: datetime, seed: int = 0) -> bytes:
    """One RSS 2.0 feed with `items` items (title + text about 500 characters on average; LONG times more)."""
    rng = random.Random(seed * 1_000_003 + index)
    parts = []
    for i in range(items):
        when = format_datetime(now - timedelta(minutes=rng.randint(0, 7 * 24 * 60)))
        title = post_text(rng, rng.randint(5, 12))
        # Sized like the real corpus (tests/corpus rss+atom: 1,155 items, title + text median 254
        # characters, mean 512): one to three paragraphs of 12-50 words, a long tail from `--long`.
        paragraphs = [post_text(rng, rng.randint(12, 50)) for _ in range(rng.choice((1, 1, 2, 3)) * LONG)]
        body = "<p>" + "</p><p>".join(paragraphs) + "</p>"
        parts.append(
            f"<item><title>{escape(title)}</title><link>https://site{index}.example/news/{i}?utm_source=rss"
            f"</link><guid>https://site{index}.example/news/{i}</guid><pubDate>{when}</pubDate>"
            f"<description>{escape(body)}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Site {index}</title>'
        f"<link>https://site{index}.example/</link>{''.join(parts)}</channel></rss>"
    ).encode()


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
