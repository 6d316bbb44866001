"""Throughput of monitor.match.Matcher with 1,000 terms, against one flat regex measured in the same run.

    .venv/bin/python bench/match_bench.py [--mb 20] [--terms 1000] [--seed 1] [--corpus DIR]

Generates a seeded multilingual corpus (English, Russian and Kazakh news-like posts: Zipf-distributed
words from a 50,000-word vocabulary per language, punctuation, «quotes», numbers, hyphens, line breaks,
now and then a term) and a term list (single words, prefixes `word*`, phrases, some with `*` inside)
grouped in topics with `all` and `none` terms. Prints the compile time, MB/s and posts/s over the
corpus, microseconds per 1.5 KB post, the same for a flat regex of all terms (on a slice: it is slow),
and, when the real test corpus is there (`--corpus`, default tests/corpus), the speed on its text.
Timings are the best of 3 runs of CPU time (other processes may share the machine).
"""

from __future__ import annotations

import argparse
import html
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from monitor.match import Matcher, fold
from monitor.types import TopicSpec

Posts = list[tuple[str, str]]
Vocabulary = tuple[list[str], list[float]]  # words, cumulative Zipf weights

COMMON = {
    "en": "the of and to in a is that for on with as was by it said he at from his an be has have are not "
    "this but they were had which after who been its their more will would about government people year "
    "new one two minister president police state country region city security official party court law "
    "election report news week council people's it's don't kazakhstan russia protest leader national",
    "ru": "и в не на что с по это как к о из за от для у же все так его но ее было года при когда был "
    "сказал также только уже после этого более может время президент правительство области власти "
    "страны россии казахстана заявил новости закон суд выборы полиция город народ совет министр решение "
    "глава партии безопасности граждан люди против вопрос году ещё её всё",
    "kk": "және бұл мен үшін деп бір да де болды туралы оның қазақстан халық ел жыл жылы бойынша кеңесі "
    "үкімет президент облыс қала сот заң сайлау министр мәселе адамдар жаңа бүгін айтты ретінде арқылы "
    "сондай ақ барлық керек мемлекет қоғам өңір ұлттық шекара жұмыс",
}
SYLLABLES = {
    "en": "ar ba be bo ca co con cu de di do en er es ex fa fo for ga gi go ha he in ion is ja ke la le li "
    "lo ma me ment mi mo na ne no or pa pe per pi po pre pro ra re ri ro sa se sep si so sta ta te ter ti "
    "tion to un va ve ver vi al an at com ist ism ate ous ive ble ful ness ly ward wick ton ham ford",
    "ru": "ба бе би бо ва ве ви во га ге го да де ди до жа же за зе зи зо ка ке ки ко ку ла ле ли ло лу ма "
    "ме ми мо му на не ни но ну па пе пи по пу ра ре ри ро ру са се си со су та те ти то ту ха хо ца це "
    "ча че ша ше ща ще ст ска ния ов ен ист изм про пре пере под тель ный ная ого ому ск ств жд щи",
    "kk": "қа қы қо құ ға ғы ғұ ма мы мұ ме мі на ны не ні та ты те ті ла лы ле лі ра ры ре рі са сы се сі "
    "ба бы бе бі ша шы ше ші ңы ңі ұл ұр ұс үн үр үй ән әр әл өз өн өр іс із іл лық лік дық дік тар тер "
    "лар лер шы ші жа жы же жі ке кі ге гі",
}
PUNCT_AFTER = [" "] * 14 + [", "] * 3 + [". ", "; ", " — ", ": ", "! ", "? ", " - ", ".\n\n"]


def vocabulary(lang: str, rng: random.Random, size: int = 50_000) -> Vocabulary:
    """Common words first, then a long tail of pseudo-words; Zipf weights (rank r has weight 1/r)."""
    syllables = SYLLABLES[lang].split()
    words = COMMON[lang].split()
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice((2, 2, 3, 3, 3, 4, 5))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return words, cumulative


def make_terms(count: int, vocab: dict[str, Vocabulary], rng: random.Random) -> list[str]:
    """Words, prefixes and phrases from the rarer vocabulary (topic words are rare in general posts);
    one phrase in ten starts with one of the 100 most common words, to load the phrase check."""
    terms: list[str] = []
    languages = ["en"] * 4 + ["ru"] * 4 + ["kk"] * 2
    while len(terms) < count:
        words = vocab[rng.choice(languages)][0]
        pick = rng.random()
        word = rng.choice(words[5000:])
        if pick < 0.45:
            terms.append(word.capitalize() if rng.random() < 0.3 else word)
        elif pick < 0.75:
            terms.append(word[: max(5, len(word) - 2)] + "*")
        else:
            first = rng.choice(words[:100]) if rng.random() < 0.1 else rng.choice(words[5000:])
            second = rng.choice(words[5000:])
            star = "*" if rng.random() < 0.4 and len(first) >= 4 else ""
            terms.append(f"{first}{star} {second}{star}")
    return terms


def make_topics(terms: list[str], per_topic: int = 20) -> list[TopicSpec]:
    topics = []
    for number, index in enumerate(range(0, len(terms), per_topic)):
        chunk = tuple(terms[index : index + per_topic])
        all_terms = chunk[:1] if number % 7 == 6 else ()
        none_terms = chunk[1:2] if number % 5 == 4 else ()
        topics.append(TopicSpec(name=f"topic-{number}", any=chunk, all=all_terms, none=none_terms))
    return topics


def decorate(word: str, lang: str, vocab: Vocabulary, terms: list[str], rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.0005:  # a term's own words now and then, so that topics match
        return rng.choice(terms).replace("*", "s" if lang == "en" else "ами")
    if roll < 0.02:
        return str(rng.randint(1, 2030))
    if roll < 0.03:
        return f"'{word}'" if lang == "en" else f"«{word}»"
    if roll < 0.04:
        return f"{word}-{rng.choice(vocab[0][:50])}"
    return word


def make_post(lang: str, size: int, vocab: Vocabulary, terms: list[str], rng: random.Random) -> str:
    """About `size` characters of sentences."""
    parts: list[str] = []
    length, capital = 0, True
    for picked in rng.choices(vocab[0], cum_weights=vocab[1], k=size // 4 + 8):
        word = decorate(picked, lang, vocab, terms, rng)
        if capital or rng.random() < 0.05:
            word = word[:1].upper() + word[1:]
        separator = rng.choice(PUNCT_AFTER)
        capital = separator[0] in ".!?"
        parts += (word, separator)
        length += len(word) + len(separator)
        if length >= size:
            break
    return "".join(parts).strip()


def make_corpus(megabytes: float, vocab: dict[str, Vocabulary], terms: list[str], rng: random.Random) -> Posts:
    """Posts with a title and a text of a log-normal length (median about 1,300 characters)."""
    posts: Posts = []
    total = 0
    while total < megabytes * 1e6:
        lang = rng.choice(("en", "ru", "ru", "kk"))
        title = make_post(lang, rng.randint(30, 90), vocab[lang], terms, rng)
        text = make_post(lang, int(rng.lognormvariate(7.2, 0.7)), vocab[lang], terms, rng)
        posts.append((title, text))
        total += len(title.encode()) + len(text.encode())
    return posts


def real_posts(corpus: Path, size: int = 1500) -> Posts:
    """Text of the real feeds and pages in the test corpus, tags stripped, cut into `size`-byte posts."""
    posts: Posts = []
    for path in sorted([*corpus.glob("rss/*.xml"), *corpus.glob("html/*.html")]):
        raw = path.read_bytes()
        try:
            markup = raw.decode("utf-8")
        except UnicodeDecodeError:
            markup = raw.decode("cp1251", "replace")
        text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", html.unescape(markup)))).encode()
        posts += [("", text[i : i + size].decode("utf-8", "ignore")) for i in range(0, len(text) - size, size)]
    return posts


def flat_regex(terms: list[str]) -> re.Pattern[str]:
    """The naive baseline: one alternation of every term, word-bounded, run over folded text."""
    alternatives = []
    for term in terms:
        words = re.findall(r"\w+(?:'\w+)*\*?", fold(term))
        alternatives.append(r"\W+".join(re.escape(w.rstrip("*")) + (r"\w*" if w[-1] == "*" else "") for w in words))
    return re.compile(r"(?<![\w'])(?:" + "|".join(alternatives) + r")(?![\w'])")


def megabytes(posts: Posts) -> float:
    return sum(len(title.encode()) + len(text.encode()) for title, text in posts) / 1e6


def cpu_seconds(action: Callable[[], object], runs: int = 3) -> float:
    """Best CPU time of `runs` runs."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def report(label: str, posts: Posts, seconds: float) -> None:
    print(
        f"{label}: {megabytes(posts) / seconds:.1f} MB/s, {len(posts) / seconds:,.0f} posts/s, "
        f"{seconds / len(posts) * 1e6:.1f} us/post ({megabytes(posts) * 1e6 / len(posts):,.0f} B/post)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Matcher throughput with many terms.")
    parser.add_argument("--mb", type=float, default=20.0, help="corpus size in MB of UTF-8 (default 20)")
    parser.add_argument("--terms", type=int, default=1000, help="number of terms (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-mb", type=float, default=1.0, help="corpus slice for the flat regex")
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "corpus")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    vocab = {lang: vocabulary(lang, rng) for lang in COMMON}
    terms = make_terms(args.terms, vocab, rng)
    topics = make_topics(terms)
    posts = make_corpus(args.mb, vocab, terms, rng)
    print(f"corpus: {len(posts):,} posts, {megabytes(posts):.1f} MB; {len(terms)} terms in {len(topics)} topics")

    compile_times = []
    for _ in range(5):
        started = time.perf_counter()
        matcher = Matcher(topics)
        compile_times.append(time.perf_counter() - started)
    print(f"compile: {statistics.median(compile_times) * 1000:.1f} ms (median of 5)")

    found = matcher.match_many(posts)
    print(f"posts matching a topic: {sum(1 for f in found if f) / len(posts):.0%}")
    report("matcher", posts, cpu_seconds(lambda: matcher.match_many(posts)))

    sized = [(title, text.encode()[:1500].decode("utf-8", "ignore")) for title, text in posts]
    sized = [(title, text) for title, text in sized if len(text.encode()) >= 1490][:5000]
    report("matcher, 1.5 KB texts", sized, cpu_seconds(lambda: matcher.match_many(sized)))

    if args.corpus.is_dir():
        real = real_posts(args.corpus)
        report(
            f"matcher, real text of {args.corpus.name}/ (en/ru/de/...)",
            real,
            cpu_seconds(lambda: matcher.match_many(real)),
        )

    share: Posts = []
    while megabytes(share) < args.baseline_mb and len(share) < len(posts):
        share += posts[len(share) : len(share) + 100]
    started = time.perf_counter()
    pattern = flat_regex(terms)
    print(f"flat regex compile: {(time.perf_counter() - started) * 1000:.0f} ms")
    regex_seconds = cpu_seconds(lambda: [set(pattern.findall(fold(t) + "\0" + fold(x))) for t, x in share], runs=1)
    report(f"flat regex ({megabytes(share):.1f} MB slice)", share, regex_seconds)
    same_seconds = cpu_seconds(lambda: matcher.match_many(share))
    print(f"ratio: the matcher is {regex_seconds / same_seconds:.0f}x faster than the flat regex (same slice)")


if __name__ == "__main__":
    main()
