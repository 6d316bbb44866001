"""Speed and quality of near-duplicate detection (monitor/dedupe.py); prints figures, asserts nothing.

    .venv/bin/python bench/dedupe_bench.py              # speed, variants, estimator, S-curve, false merges
    .venv/bin/python bench/dedupe_bench.py --shingles   # also compare shingle kinds by exact Jaccard (~1 min)

Articles are the items of the RSS and Atom feeds in tests/corpus: title plus the longest of
description / content:encoded / content / summary, HTML stripped here with a regex. Syndicated variants
are made from every distinct article whose body has at least `dedupe.MIN_WORDS` distinct words. The
store's rule is simulated: a variant clusters with its original when both have the same content hash,
or when they share an LSH band key and their similarity is >= THRESHOLD. Seeded: runs are repeatable.
"""

from __future__ import annotations

import argparse
import html
import itertools
import random
import re
import statistics
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor import dedupe
from monitor.normalize import content_hash, normalize
from monitor.types import RawItem

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
SEED = 20240501
Article = tuple[str, str, str]  # (feed file, title, text)


# --- corpus ---------------------------------------------------------------------------------------


def _strip_html(s: str) -> str:
    for _ in range(2):  # entity-escaped HTML needs a second pass once unescaped
        s = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</h\d>", "\n", s)
        s = html.unescape(re.sub(r"<[^>]+>", " ", s))
    return s


def load_articles() -> list[Article]:
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    out: list[Article] = []
    files = sorted((CORPUS / "rss").glob("*.xml")) + sorted((CORPUS / "atom").glob("*.atom"))
    for path in files:
        tree = etree.parse(str(path), parser)
        for item in tree.iter("{*}item", "{*}entry"):
            title, text = "", ""
            for child in item:
                if not isinstance(child.tag, str):
                    continue
                name = etree.QName(child).localname
                value = "".join(child.itertext())
                if name == "title":
                    title = " ".join(_strip_html(value).split())
                elif name in {"description", "encoded", "content", "summary"}:
                    value = _strip_html(value).strip()
                    if len(value) > len(text):
                        text = value
            out.append((path.name, title, text))
    return out


def distinct(articles: list[Article]) -> list[Article]:
    """Articles whose compared text differs (exact copies in the corpus are copies by definition)."""
    seen: set[str] = set()
    out = []
    for art in articles:
        key = dedupe.dedupe_text(art[1], art[2])
        if key not in seen:
            seen.add(key)
            out.append(art)
    return out


def is_cyrillic(s: str) -> bool:
    return sum("а" <= ch.lower() <= "я" or ch in "ёіїєқңүұәөһғ" for ch in s) > len(s) / 4


# --- speed ----------------------------------------------------------------------------------------


def posts_of(articles: list[Article], size: int = 1500) -> list[str]:
    """Real texts of about `size` characters, cut at a word boundary: long articles as they are, and
    shorter Cyrillic articles joined in feed order (the corpus has few long Russian texts)."""
    out = [text for _, _, text in articles if len(text) >= size]
    joined = ""
    for _, _, text in articles:
        if is_cyrillic(text) and len(text) < size:
            joined += text + "\n\n"
            if len(joined) >= size:
                out.append(joined)
                joined = ""
    cut = [text[:size] for text in out]
    return [c[: c.rfind(" ")] if " " in c else c for c in cut]


def per_call_us(fn: Callable[[], object], calls: int, repeat: int = 5) -> tuple[float, float]:
    """(best, median) microseconds per call over `repeat` timed runs of `fn`, which makes `calls` calls."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) / calls * 1e6)
    return min(runs), statistics.median(runs)


def bench_speed(articles: list[Article]) -> None:
    texts = posts_of(articles)
    cyrillic = [t for t in texts if is_cyrillic(t)]
    latin = [t for t in texts if not is_cyrillic(t)]
    fire = " \U0001f525"
    emoji = [" ".join(w + (fire if i % 12 == 0 else "") for i, w in enumerate(t.split())) for t in latin]
    mean_len = sum(map(len, texts)) / len(texts)
    print(f"== speed: {len(texts)} real posts of {mean_len:.0f} characters on average "
          f"({len(latin)} Latin, {len(cyrillic)} Cyrillic); one process, one thread")  # fmt: skip
    dedupe.signature("", "warm up: builds the character tables once per process")
    sigs = [dedupe.signature("A title", t) for t in texts]

    def sign(batch: list[str]) -> Callable[[], None]:
        def run() -> None:
            for t in batch:
                dedupe.signature("A title", t)

        return run

    def sign_at_once() -> None:  # as prepare signs a poll's posts
        assert dedupe.signatures([("A title", t) for t in texts]) == sigs

    def bands() -> None:
        for s in sigs:
            dedupe.band_keys(s)

    def compare() -> None:
        for a, b in itertools.pairwise(sigs):
            dedupe.similarity(a, b)

    now = datetime(2024, 5, 1, tzinfo=UTC)
    items = [RawItem(guid=None, url=f"https://example.org/a/{i}?utm_source=x", title="A title", text=t)
             for i, t in enumerate(texts)]  # fmt: skip

    def norm() -> None:
        for it in items:
            normalize(it, source="bench", now=now)

    rows = [("signature(), all posts", sign(texts), len(texts)),
            ("signature(), Latin posts", sign(latin), len(latin)),
            ("signature(), Cyrillic posts", sign(cyrillic), len(cyrillic)),
            ("signature(), Latin posts with an emoji every 12 words", sign(emoji), len(emoji)),
            ("signatures(), all posts in one call (as a poll)", sign_at_once, len(texts)),
            ("band_keys()", bands, len(sigs)),
            ("similarity()", compare, len(sigs) - 1),
            ("normalize() (RawItem -> Post)", norm, len(items))]  # fmt: skip
    try:
        from datasketch import MinHash

        def datasketch_sign() -> None:
            for t in texts:
                m = MinHash(num_perm=dedupe.NUM_PERM)
                m.update_batch([w.encode() for w in set(dedupe.dedupe_text("A title", t).split())])
                m.digest()

        rows.append(("datasketch MinHash(128) of dedupe_text, for comparison", datasketch_sign, len(texts)))
    except ImportError:
        print("   (datasketch not installed: no comparison)")
    for name, fn, calls in rows:
        best, median = per_call_us(fn, calls)
        print(f"   {name:55s} {best:6.1f} us/post best, {median:6.1f} median ({1e6 / median:8,.0f} /s)")


# --- variants -------------------------------------------------------------------------------------


def reformat(rng: random.Random, title: str, text: str) -> tuple[str, str]:
    """Same words; other whitespace, case and punctuation (sentence marks, quotes, dashes)."""
    out = []
    for word in text.split():
        marked = re.sub(r"[.,;:!?]+$", lambda m: rng.choice(["", m.group(), "!", " ...", ";"]), word)
        quoted = marked.replace('"', rng.choice(["«", "»", "“", ""])).replace("—", "-")
        out.append(quoted + rng.choice([" ", "  ", "\n", "\n\n", " \t"]))
    text = "".join(out)
    text = rng.choice([text.upper(), text.lower(), text.title(), text])
    return title.upper() + "!", "« " + text + " »"


def with_source(rng: random.Random, title: str, text: str) -> tuple[str, str]:
    credit = rng.choice(["Источник: ТАСС", "Дереккөз: Kazinform"] if is_cyrillic(text) else
                        ["Source: Reuters", "Source: AP News", "via The Guardian"])  # fmt: skip
    return title, text.rstrip() + "\n" + credit


def new_title(rng: random.Random, title: str, text: str) -> tuple[str, str]:
    return rng.choice(["Breaking news", "Срочно", "What happened today", "Главное за день"]), text


def replacer(fraction: float, vocabulary: list[str]) -> Callable[[random.Random, str, str], tuple[str, str]]:
    def replace(rng: random.Random, title: str, text: str) -> tuple[str, str]:
        words = text.split()
        for i in rng.sample(range(len(words)), max(1, round(len(words) * fraction))):
            words[i] = rng.choice(vocabulary)
        return title, " ".join(words)

    return replace


def truncate(rng: random.Random, title: str, text: str) -> tuple[str, str]:
    words = text.split()
    return title, " ".join(words[: int(len(words) * 0.8)])


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def clusters(orig: Article, variant: tuple[str, str], osig: bytes, vsig: bytes) -> bool:
    """The store's rule: same content hash, or a shared band key and similarity >= THRESHOLD."""
    if content_hash(orig[1], orig[2]) == content_hash(*variant):
        return True
    shared = set(dedupe.band_keys(osig)) & set(dedupe.band_keys(vsig))
    return bool(shared) and dedupe.similarity(osig, vsig) >= dedupe.THRESHOLD


def bench_variants(articles: list[Article], vocabulary: list[str]) -> list[tuple[float, float, bool]]:
    rng = random.Random(SEED)
    makers: list[tuple[str, Callable[[random.Random, str, str], tuple[str, str]]]] = [
        ("identical copy", lambda r, t, x: (t, x)),
        ("whitespace / case / punctuation", reformat),
        ("'Source: X' line appended", with_source),
        ("title changed", new_title),
        ("5% of words replaced", replacer(0.05, vocabulary)),
        ("10% of words replaced", replacer(0.10, vocabulary)),
        ("20% of words replaced", replacer(0.20, vocabulary)),
        ("truncated to first 80%", truncate),
    ]
    groups = {
        "all": [True] * len(articles),
        "short": [len(dedupe.dedupe_text("", a[2]).split()) < dedupe.BODY_ONLY_WORDS for a in articles],
        "Cyrillic": [is_cyrillic(a[2]) for a in articles],
    }
    groups["long"] = [not short for short in groups["short"]]
    print(f"\n== variants of the {len(articles)} distinct articles whose body has >= {dedupe.MIN_WORDS} "
          "distinct words")  # fmt: skip
    print(f"   short: body under {dedupe.BODY_ONLY_WORDS} words, compared with its title "
          f"({sum(groups['short'])}); long: the others ({sum(groups['long'])}); "
          f"Cyrillic ({sum(groups['Cyrillic'])})")  # fmt: skip
    print(f"   {'share of variants clustered':34s}" + "".join(f"{g:>9s}" for g in groups)
          + f" {'exact J':>8s} {'est. J':>7s} {'no band':>7s}")  # fmt: skip
    pairs: list[tuple[float, float, bool]] = []  # (exact Jaccard, estimate, shared a band) for the estimator
    for name, make in makers:
        hits: list[bool] = []
        jac, est, no_band = [], [], 0
        for art in articles:
            variant = make(rng, art[1], art[2])
            osig, vsig = dedupe.signature(art[1], art[2]), dedupe.signature(*variant)
            hits.append(clusters(art, variant, osig, vsig))
            j = exact_jaccard(dedupe.dedupe_text(art[1], art[2]), dedupe.dedupe_text(*variant))
            s = dedupe.similarity(osig, vsig)
            banded = bool(set(dedupe.band_keys(osig)) & set(dedupe.band_keys(vsig)))
            jac.append(j)
            est.append(s)
            no_band += s >= dedupe.THRESHOLD and not banded
            if osig and vsig:
                pairs.append((j, s, banded))
        rates = "".join(
            f"{sum(h for h, m in zip(hits, member, strict=True) if m) / max(1, sum(member)):9.1%}"
            for member in groups.values()
        )
        print(f"   {name:34s}{rates} {statistics.mean(jac):8.3f} {statistics.mean(est):7.3f} {no_band:7d}")
    print(
        "   (exact J: mean Jaccard of the compared word sets; est. J: mean similarity(); "
        "no band: similar enough but missed by LSH)"
    )
    bench_template_risk(rng, articles)
    return pairs


def bench_template_risk(rng: random.Random, articles: list[Article]) -> None:
    """Short posts that differ only in their numbers (daily rates, scores) are distinct stories."""
    for low, high in ((8, 40), (40, 100)):
        posts = [a for a in articles if low <= len(a[2].split()) < high and len(re.findall(r"\d+", a[2])) > 1]
        hits = 0
        for title, text in ((a[1], a[2]) for a in posts):
            other = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)
            sigs = dedupe.signature(title, text), dedupe.signature(title, other)
            hits += clusters(("", title, text), (title, other), *sigs)
        print(f"   template risk: bodies of {low}-{high - 1} words with >= 2 numbers ({len(posts)}), "
              f"every number changed: {hits / max(1, len(posts)):.1%} cluster")  # fmt: skip


def bench_estimator(pairs: list[tuple[float, float, bool]], articles: list[Article]) -> None:
    print("\n== estimator: similarity() - exact Jaccard of the word sets, over all variant pairs")
    errors = [s - j for j, s, _ in pairs]
    print(
        f"   this module: mean {statistics.mean(errors):+.4f}, sd {statistics.pstdev(errors):.4f}, "
        f"ideal sd at J=0.9 for {dedupe.NUM_PERM} permutations {np.sqrt(0.9 * 0.1 / dedupe.NUM_PERM):.4f}"
    )
    try:
        from datasketch import MinHash
    except ImportError:
        return
    rng = random.Random(SEED)
    replace = replacer(0.05, [w for a in articles for w in a[2].split()])
    errs = []
    for art in articles:
        variant = replace(rng, art[1], art[2])
        a, b = (set(dedupe.dedupe_text(*x).split()) for x in ((art[1], art[2]), variant))
        ma, mb = MinHash(num_perm=dedupe.NUM_PERM), MinHash(num_perm=dedupe.NUM_PERM)
        ma.update_batch([w.encode() for w in a])
        mb.update_batch([w.encode() for w in b])
        mine = dedupe.similarity(dedupe.signature(*art[1:]), dedupe.signature(*variant))
        exact = len(a & b) / len(a | b)
        errs.append((ma.jaccard(mb) - exact, mine - exact))
    ds, me = zip(*errs, strict=True)
    print(
        f"   5%-replaced pairs, datasketch: mean {statistics.mean(ds):+.4f} sd {statistics.pstdev(ds):.4f};"
        f" this module: mean {statistics.mean(me):+.4f} sd {statistics.pstdev(me):.4f}"
    )


def bench_s_curve(pairs: list[tuple[float, float, bool]]) -> None:
    print("\n== LSH S-curve: P(candidate) = 1 - (1 - s**rows)**bands")
    layouts = [(dedupe.BANDS, dedupe.ROWS), (12, 10), (32, 4), (8, 16)]
    heads = "  ".join(f"{b:>2d}x{r:<2d}{'*' if (b, r) == layouts[0] else ' '}" for b, r in layouts)
    print(f"   s     {heads}   measured (chosen layout, variant pairs by estimated s)")
    for s in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        cells = "  ".join(f"{1 - (1 - s**r) ** b:7.4f}" for b, r in layouts)
        bucket = [banded for _, est, banded in pairs if abs(est - s) < 0.025]
        measured = f"{sum(bucket) / len(bucket):.4f} of {len(bucket)}" if bucket else "-"
        print(f"   {s:4.2f}  {cells}   {measured}")
    print(f"   (* chosen: {dedupe.BANDS} bands x {dedupe.ROWS} rows = {dedupe.BANDS} index rows per post)")


def bench_false_merges(articles: list[Article]) -> None:
    signed = [(a, s) for a in articles if (s := dedupe.signature(a[1], a[2]))]
    n = len(signed)
    print(f"\n== false merges among {n} distinct articles with a signature ({n * (n - 1) // 2:,} pairs)")
    index: dict[int, list[int]] = {}
    for i, (_, sig) in enumerate(signed):
        for key in dedupe.band_keys(sig):
            index.setdefault(key, []).append(i)
    candidates = {(i, j) for ids in index.values() for i, j in itertools.combinations(ids, 2)}
    matrix = np.frombuffer(b"".join(s[1:] for _, s in signed), dtype="<u4").reshape(n, dedupe.NUM_PERM)
    best = np.zeros(n)
    above: list[tuple[float, int, int]] = []
    for i in range(n - 1):  # every pair, not only the LSH candidates
        sims = (matrix[i + 1 :] == matrix[i]).mean(axis=1)
        best[i] = max(best[i], sims.max())
        above += [(float(sims[k]), i, i + 1 + int(k)) for k in np.flatnonzero(sims >= 0.5)]
    merged = [(score, i, j) for score, i, j in above if score >= dedupe.THRESHOLD and (i, j) in candidates]
    print(
        f"   LSH candidate pairs: {len(candidates):,}; pairs with similarity >= 0.5: {len(above)}; "
        f">= THRESHOLD ({dedupe.THRESHOLD}): {sum(score >= dedupe.THRESHOLD for score, _, _ in above)}"
    )
    rate = len(merged) / (n * (n - 1) / 2)
    print(f"   false merges (candidate and >= THRESHOLD): {len(merged)} = {rate:.2e} of pairs")
    for score, i, j in sorted(above, reverse=True)[:6]:
        a, b = signed[i][0], signed[j][0]
        print(f"   {score:.3f}  {a[0]}: {a[2][:60]!r}\n          {b[0]}: {b[2][:60]!r}")


# --- shingle kinds (exact Jaccard, slow) ----------------------------------------------------------


def shingles(s: str, kind: str) -> set[str]:
    words = s.split()
    if kind.startswith("word"):
        k = int(kind[4:])
        return {" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}
    k = int(kind[4:])
    return {s[i : i + k] for i in range(max(1, len(s) - k + 1))}


def bench_shingles(articles: list[Article], vocabulary: list[str]) -> None:
    print(
        f"\n== shingle kinds: exact Jaccard >= {dedupe.THRESHOLD} (share of variants) and the most similar "
        "distinct pair"
    )
    texts = [unicodedata.normalize("NFC", dedupe.dedupe_text("", a[2])) for a in articles]
    rng = random.Random(SEED)
    variants = {name: [make(rng, "", t)[1] for t in texts] for name, make in
                [("5%", replacer(0.05, vocabulary)), ("10%", replacer(0.10, vocabulary)),
                 ("20%", replacer(0.20, vocabulary)), ("cut 80%", truncate)]}  # fmt: skip
    print(f"   {'kind':8s} " + " ".join(f"{k:>8s}" for k in variants) + "  max distinct")
    for kind in ("word1", "word2", "word3", "char4", "char5"):
        sets = [shingles(t, kind) for t in texts]
        rates = []
        for vs in variants.values():
            ok = sum(len(a & (b := shingles(v, kind))) / len(a | b) >= dedupe.THRESHOLD
                     for a, v in zip(sets, vs, strict=True))  # fmt: skip
            rates.append(ok / len(texts))
        top = max(len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2))
        print(f"   {kind:8s} " + " ".join(f"{r:8.1%}" for r in rates) + f"  {top:12.3f}")


def words_of(articles: list[Article]) -> Iterator[str]:
    for art in articles:
        yield from art[2].split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shingles", action="store_true", help="also compare shingle kinds (slow)")
    args = ap.parse_args()
    raw = load_articles()
    enough = [len(set(dedupe.dedupe_text("", a[2]).split())) >= dedupe.MIN_WORDS for a in distinct(raw)]
    articles = [a for a, ok in zip(distinct(raw), enough, strict=True) if ok]
    vocabulary = list(words_of(articles))
    print(
        f"corpus: {len(raw)} feed items, {len(distinct(raw))} distinct; THRESHOLD={dedupe.THRESHOLD}, "
        f"NUM_PERM={dedupe.NUM_PERM}, {dedupe.BANDS} bands x {dedupe.ROWS} rows, "
        f"MIN_WORDS={dedupe.MIN_WORDS}, BODY_ONLY_WORDS={dedupe.BODY_ONLY_WORDS}\n"
    )
    bench_speed(raw)
    pairs = bench_variants(articles, vocabulary)
    bench_estimator(pairs, articles)
    bench_s_curve(pairs)
    bench_false_merges(distinct(raw))
    if args.shingles:
        bench_shingles(articles, vocabulary)


if __name__ == "__main__":
    main()
