"""What `transliterate: true` gains and costs: matches gained, false matches added, decoys, speed.

    .venv/bin/python bench/translit_bench.py [--seed 1] [--mb 5] [--corpus tests/corpus]

1. The capture corpus (tests/corpus: feed items parsed with the project's parser; pages and API responses
   as text): posts matching the default config's topics with transliteration off and on; on the English
   files every added match is a false one (the target is none).
2. A generated Latin-script corpus (seeded): the real Kazakh and Russian words of the default topics in
   their inflections, each written in each scheme by a forward transliterator written here from the
   standards (so not by the matcher's own tables), in English or Latin-script sentences; and near misses
   that must not match (run-together words, other words, wrong order, prefixes of other words).
   Recall per scheme and false matches.
3. Spellings from the English-language press (akorda.kz, vlast.kz pages about Kazakhstan): Kazakh names as
   terms, matched against the spellings the press used. Some are not letter-by-letter renderings.
4. Decoys: Cyrillic terms whose Latin rendering is an English or German word, each with the sentence it
   would hit and whether it does under the module's rules (short terms are not transliterated).
5. Speed: the matcher with 1,000 terms (bench/match_bench.py's generated terms and posts) with
   transliteration off and on, CPU time, best of 3, as a ratio in the same run; and compile time.
"""

from __future__ import annotations

import argparse
import html
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import match_bench  # type: ignore[import-not-found]

from monitor import translit
from monitor.collectors import SOURCE_MODELS
from monitor.collectors.feedparse import parse_feed
from monitor.config import load_config
from monitor.exceptions import ParseError
from monitor.match import Matcher
from monitor.types import TopicSpec

ROOT = Path(__file__).resolve().parents[1]
Posts = list[tuple[str, str]]

# ------------------------------------------------------------------------------ forward transliterators
# One spelling per scheme, written from the standards (see monitor/translit.py for the sources), with
# their context rules; independent of the matcher's tables on purpose.

_COMMON = dict(zip("абвгдзклмнопрстуф", "abvgdzklmnoprstuf", strict=True))
_VOWELS = set("аәеёиоөуұүыіэюя")


class _Scheme:
    """One scheme: a letter table and, for BGN/PCGN-like schemes, "ye" for е initially and after vowels."""

    def __init__(self, extra: dict[str, str], e_initial: str | None = None) -> None:
        self.table = {**_COMMON, **extra}
        self.e_initial = e_initial

    def __call__(self, word: str) -> str:
        out = []
        for i, char in enumerate(word):
            low = char.lower()
            value = self.table.get(low, low)
            if self.e_initial and low == "е" and (i == 0 or word[i - 1].lower() in _VOWELS | {"ъ", "ь", "й"}):
                value = self.e_initial
            out.append(value.capitalize() if char.isupper() else value)
        return "".join(out)

    def letter(self, char: str) -> str:
        """One letter out of context (a writer mixing schemes)."""
        value = self.table.get(char.lower(), char.lower())
        return value.capitalize() if char.isupper() else value


def _pairs(text: str) -> dict[str, str]:
    """'е=e ё=yo ъ=-' -> {'е': 'e', 'ё': 'yo', 'ъ': ''}."""
    return {k: ("" if v == "-" else v) for k, _, v in (item.partition("=") for item in text.split())}


RU = {
    "ICAO 2013": _Scheme(_pairs("е=e ё=e ж=zh и=i й=i х=kh ц=ts ч=ch ш=sh щ=shch ъ=ie ы=y ь=- э=e ю=iu я=ia")),
    "GOST 7.79 B": _Scheme(_pairs("е=e ё=yo ж=zh и=i й=j х=x ц=cz ч=ch ш=sh щ=shh ъ=`` ы=y' ь=` э=e` ю=yu я=ya")),
    "BGN/PCGN": _Scheme(
        _pairs("е=e ё=ë ж=zh и=i й=y х=kh ц=ts ч=ch ш=sh щ=shch ъ=ʺ ы=y ь=ʹ э=e ю=yu я=ya"), e_initial="ye"
    ),
    "scholarly": _Scheme(_pairs("е=e ё=ë ж=ž и=i й=j х=x ц=c ч=č ш=š щ=šč ъ=ʺ ы=y ь=ʹ э=è ю=ju я=ja")),
    "chat (h, j, i)": _Scheme(_pairs("е=e ё=yo ж=j и=i й=i х=h ц=c ч=ch ш=sh щ=sch ъ=- ы=i ь=' э=e ю=ju я=ja")),
    "chat (x, w, y)": _Scheme(_pairs("е=e ё=e ж=zh и=i й=y х=x ц=tz ч=ch ш=w щ=w ъ=- ы=y ь=- э=e ю=yu я=ya")),
}
_KK_LOANS = "ц=ts ч=ch щ=shch ъ=- ь=- э=e ё=yo в=v ф=f е=e һ=h "
KK = {
    "2021 (ñ)": _Scheme(_pairs(_KK_LOANS + "ә=ä ғ=ğ ж=j и=i й=i қ=q ң=ñ ө=ö у=u ұ=ū ү=ü х=h ш=ş ы=y і=ı ю=iu я=ia")),
    "2021 draft (ŋ)": _Scheme(
        _pairs(_KK_LOANS + "ә=ä ғ=ğ ж=j и=i й=i қ=q ң=ŋ ө=ö у=u ұ=ū ү=ü х=h ш=ş ы=y і=ı ю=iu я=ia")
    ),
    "2018 (acutes)": _Scheme(
        _pairs(_KK_LOANS + "ә=á ғ=ǵ ж=j и=ı й=ı қ=q ң=ń ө=ó у=ý ұ=u ү=ú х=h ш=sh ы=y і=i ю=ıý я=ıa")
    ),
    "2017 (apostrophes)": _Scheme(
        _pairs(_KK_LOANS + "ә=a' ғ=g' ж=j и=i' й=i' қ=q ң=n' ө=o' у=y' ұ=u ү=u' х=h ш=s' ы=y і=i ю=i'y' я=i'a")
    ),
    "plain (marks dropped)": _Scheme(
        _pairs(_KK_LOANS + "ә=a ғ=g ж=j и=i й=i қ=q ң=n ө=o у=u ұ=u ү=u х=h ш=s ы=y і=i ю=iu я=ia")
    ),
    "Russian-style (press)": _Scheme(
        _pairs(_KK_LOANS + "ә=a ғ=g ж=zh и=i й=i қ=k ң=n ө=o у=u ұ=u ү=u х=kh ш=sh ы=y і=i ю=yu я=ya"),
        e_initial="ye",
    ),
    "Turkish-style": _Scheme(
        _pairs(_KK_LOANS + "ә=ä ғ=ğ ж=j и=i й=y қ=k ң=ñ ө=ö у=u ұ=u ү=ü х=h ш=ş ч=ç ы=ı і=i ю=yu я=ya")
    ),
    "mixed (Xalyq keñesi)": _Scheme(
        _pairs(_KK_LOANS + "ә=ä ғ=ğ ж=j и=i й=y қ=q ң=ñ ө=ö у=u ұ=u ү=ü х=x ш=ş ы=y і=i ю=yu я=ya")
    ),
    "apostrophe digraphs": _Scheme(
        _pairs(_KK_LOANS + "ә=a' ғ=g' ж=zh и=i й=i қ=k' ң=n' ө=o у=u ұ=u' ү=u х=h ш=sh ы=y і=i ю=yu я=ya")
    ),
}

# The default topics' words, in their inflections (Russian: cases and plurals; Kazakh: possessive and case
# endings), as written in Cyrillic.
RU_FORMS = {
    "separatism": "сепаратизм сепаратизма сепаратизму сепаратизмом сепаратизме сепаратист сепаратиста "
    "сепаратисты сепаратистов сепаратистами сепаратистский сепаратистская сепаратистские сепаратистских",
    "peoples-council": "Народный_совет Народного_совета Народному_совету Народным_советом Народном_совете "
    "Народные_советы Народных_советов народного_совета",
}
KK_FORMS = {
    "separatism": "бөлінушілік бөлінушілікке бөлінушіліктің бөлінушілікпен бөлінушілікті бөлінушілікке",
    "peoples-council": "Халық_кеңесі Халық_кеңесінің Халық_кеңесіне Халық_кеңесін Халық_кеңесінде "
    "Халық_кеңесімен Халық_кеңесінен Халық_кеңесі",
}
# Must not match: joined words, the wrong order, other words that start alike, a term's word alone.
NEAR_MISSES = [
    "Halyqkenesi", "kenesi halyq", "Halyq", "keñes", "Narodnyi", "sovetnik narodnyi", "narodnyisovet",
    "separator", "separated", "separately", "separatum", "bolinu", "boliniskhan", "Kenes Group", "Soviet",
    "Halyk Bank", "Narodnaya Volya", "antiseparatizm", "separ", "Sovetskaya street", "narod sovet",
]  # fmt: skip
_FILLER = """the of and to in a is that for on with as was by it said at from news today region city officials
report meeting police court border statement protest leaders local week council government"""
FILLER = _FILLER.split()


def sentence(rng: random.Random, phrase: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 14))]
    words.insert(rng.randint(0, len(words)), phrase)
    text = " ".join(words) + rng.choice([".", "!", "?", ":", " —"])
    return text[0].upper() + text[1:]


def cased(rng: random.Random, text: str) -> str:
    roll = rng.random()
    return text.upper() if roll < 0.15 else text.title() if roll < 0.5 else text


def latin_corpus(rng: random.Random) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Positives (scheme, topic, the Cyrillic form, the sentence) for each scheme and form; negatives."""
    positives = []
    for schemes, forms in ((RU, RU_FORMS), (KK, KK_FORMS)):
        for name, spell in schemes.items():
            for topic, words in forms.items():
                for form in words.split():
                    phrase = " ".join(spell(w) for w in form.split("_"))
                    positives.append((name, topic, form.replace("_", " "), sentence(rng, cased(rng, phrase))))
        # a writer mixing schemes letter by letter (Halyk keñesi): each letter from a random scheme
        tables = list(schemes.values())
        for topic, words in forms.items():
            for form in words.split():
                for _ in range(3):
                    phrase = " ".join("".join(rng.choice(tables).letter(c) for c in w) for w in form.split("_"))
                    label = "mixed, Russian" if schemes is RU else "mixed, Kazakh"
                    positives.append((label, topic, form.replace("_", " "), sentence(rng, cased(rng, phrase))))
    negatives = [sentence(rng, cased(rng, miss)) for miss in NEAR_MISSES for _ in range(3)]
    return positives, negatives


# Kazakh names as the English-language press spells them (pages: akorda.kz "Remarks by President
# Kassym-Jomart Tokayev at the third meeting of the National Kurultai", 15 March 2024; vlast.kz English news).
PRESS = [
    ("Тоқаев", "Tokayev"), ("Жомарт", "Jomart"), ("Қасым", "Kassym"), ("Құрылтай", "Kurultai"),
    ("Жайық", "Zhaiyk"), ("Сарайшық", "Saraishyk"), ("Ұлытау", "Ulytau"), ("Көрісу", "Korisu"),
    ("Наурыз", "Nauryz"), ("Атырау", "Atyrau"), ("Мұхтар", "Mukhtar"), ("Тілеуберді", "Tileuberdi"),
    ("Аманат", "Amanat"), ("Акчулаков", "Akchulakov"), ("Түркістан", "Turkestan"), ("Назарбаев", "Nazarbayev"),
    ("Қазақстан", "Qazaqstan"), ("Республика", "Respublica"), ("Юсупжанов", "Yusupzhanov"),
]  # fmt: skip

# Cyrillic terms whose rendering is an English (or German) word.
DECOYS = [
    ("Орал", "Oral (Uralsk)", "an oral hearing"), ("марш", "march", "a salt marsh"), ("нет", "no", "the net"),
    ("мир", "peace", "the Mir space station"), ("сон", "sleep", "her son"), ("бунт", "riot", "a sacrifice bunt"),
    ("пост", "post", "the post office"), ("тіл", "language", "til dawn"), ("банк", "bank", "the bank"),
    ("Кеңес", "council", "the Kenes Group conference"), ("роман", "novel", "the Roman Empire"),
    ("Марина", "Marina", "a marina"), ("арена", "arena", "the arena"), ("мастер", "master", "a master's degree"),
    ("протест*", "protest", "a Protestant church"), ("регион", "region", "the region"),
    ("студент", "student", "a student"), ("момент", "moment", "a moment"), ("спорт", "sport", "the sport"),
    ("интернет", "internet", "the internet"), ("финал", "final", "the final"), ("старт", "start", "the start"),
    ("парламент", "parliament", "im Parlament (de)"), ("демократ*", "democrat", "die Demokratie (de)"),
    ("сепаратист*", "separatist", "separatists said"),
]  # fmt: skip


# ------------------------------------------------------------------------------ the capture corpus


def _strip_html(text: str) -> str:
    for _ in range(2):
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())


def corpus_posts(corpus: Path) -> list[tuple[str, str, str]]:
    """(file, title, text): feed items through the project's parser; other files as 1,500-character texts."""
    out = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".md"):
        name = str(path.relative_to(corpus))
        try:
            items = parse_feed(path.read_bytes(), url="https://example.org/").items if path.parent.name in (
                "rss", "atom", "malformed") else ()  # fmt: skip
        except ParseError:
            items = ()
        if items:
            out += [(name, _strip_html(i.title), _strip_html(i.text)) for i in items]
            continue
        raw = path.read_bytes().decode("utf-8", "replace")
        text = _strip_html(raw.replace("\\n", " "))
        out += [(name, "", text[i : i + 1500]) for i in range(0, len(text), 1500)]
    return out


def language_of(name: str) -> str:
    base = name.rsplit("/", maxsplit=1)[-1]
    return base[:2] if len(base) > 3 and base[2] == "_" else "?"


# ------------------------------------------------------------------------------ report


def cpu(action: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mb", type=float, default=5.0, help="size of the generated corpus for the speed ratio")
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "corpus")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    topics = load_config(ROOT / "config.yaml", source_types=SOURCE_MODELS).topics
    on = Matcher(list(topics))
    off = Matcher([TopicSpec(t.name, t.any, t.all, t.none, transliterate=False) for t in topics])
    print(f"topics: {', '.join(f'{t.name} (transliterate: {t.transliterate})' for t in topics)}")

    # 1. capture corpus
    posts = corpus_posts(args.corpus)
    print(f"\n1. capture corpus {args.corpus.name}/: {len(posts)} posts from {len({p[0] for p in posts})} files")
    print(f"{'files':12} {'posts':>6} {'match off':>10} {'match on':>9} {'gained':>7}")
    for label, keep in (("English", lambda lang: lang == "en"), ("other", lambda lang: lang != "en")):
        chosen = [p for p in posts if keep(language_of(p[0]))]
        before = sum(bool(off.match(t, x)) for _, t, x in chosen)
        after = sum(bool(on.match(t, x)) for _, t, x in chosen)
        gained = [(f, t) for f, t, x in chosen if set(on.match(t, x)) - set(off.match(t, x))]
        print(f"{label:12} {len(chosen):6d} {before:10d} {after:9d} {len(gained):7d}")
        for name, title in gained[:10]:
            print(f"    gained: {name}: {title[:70]!r}")

    # 2. generated Latin-script corpus
    positives, negatives = latin_corpus(rng)
    print(f"\n2. generated Latin-script corpus (seed {args.seed}): {len(positives)} sentences with a topic's word, "
          f"{len(negatives)} near misses")  # fmt: skip
    print(f"{'scheme':24} {'forms':>5} {'found off':>9} {'found on':>8}   missed (on)")
    for name in [*RU, "mixed, Russian", *KK, "mixed, Kazakh"]:
        rows = [p for p in positives if p[0] == name]
        found_on = [p for p in rows if p[1] in {m.topic for m in on.match("", p[3])}]
        found_off = [p for p in rows if p[1] in {m.topic for m in off.match("", p[3])}]
        missed = [p[2] for p in rows if p not in found_on]
        print(f"{name:24} {len(rows):5d} {len(found_off):9d} {len(found_on):8d}   {', '.join(missed[:4])}")
    total_on = sum(p[1] in {m.topic for m in on.match("", p[3])} for p in positives)
    false_on = [n for n in negatives if on.match("", n)]
    false_off = [n for n in negatives if off.match("", n)]
    print(f"{'all':24} {len(positives):5d} {'':9} {total_on:8d}   recall {total_on / len(positives):.3f}")
    print(f"near misses matched: off {len(false_off)}/{len(negatives)}, on {len(false_on)}/{len(negatives)}"
          + (f"  e.g. {false_on[:3]}" if false_on else ""))  # fmt: skip

    # 3. the press
    print("\n3. Kazakh names as the English-language press spells them (term -> spelling: matched?)")
    hits = 0
    for term, spelling in PRESS:
        matched = bool(Matcher([TopicSpec("t", (term,), transliterate=True)]).match("", f"said {spelling} on"))
        hits += matched
        print(f"  {term:12} {spelling:12} {'yes' if matched else 'no'}")
    print(f"  {hits}/{len(PRESS)} matched")

    # 4. decoys
    english = [(t, x) for f, t, x in posts if language_of(f) in ("en", "de")]
    print(f"\n4. decoys (min {translit.MIN_LETTERS} letters to transliterate); corpus = {len(english)} en/de posts")
    print(f"{'term':12} {'means':16} {'sentence':30} {'hit':>4} {'naive':>6} {'corpus posts':>12}")
    for term, meaning, text in DECOYS:
        ours = Matcher([TopicSpec("t", (term,), transliterate=True)])
        naive_pattern = _naive(term)
        corpus_hits = sum(bool(ours.match(t, x)) for t, x in english)
        print(f"{term:12} {meaning:16} {text:30} {'yes' if ours.match('', text) else 'no':>4} "
              f"{'yes' if naive_pattern.search(text.casefold()) else 'no':>6} {corpus_hits:12d}")  # fmt: skip

    # 5. speed
    vocab = {lang: match_bench.vocabulary(lang, rng) for lang in match_bench.COMMON}
    terms = match_bench.make_terms(1000, vocab, rng)
    plain = match_bench.make_topics(terms)
    latin = [TopicSpec(t.name, t.any, t.all, t.none, transliterate=True) for t in plain]
    bench_posts = match_bench.make_corpus(args.mb, vocab, terms, rng)
    real = [(t, x) for _, t, x in posts]
    started = time.perf_counter()
    m_off = Matcher(plain)
    compile_off = time.perf_counter() - started
    started = time.perf_counter()
    m_on = Matcher(latin)
    compile_on = time.perf_counter() - started
    transliterated = sum(1 for t in terms if any(translit.is_cyrillic(c) for c in t))
    size = match_bench.megabytes(bench_posts)
    print(f"\n5. speed: {len(terms)} terms ({transliterated} Cyrillic, transliterated when >= "
          f"{translit.MIN_LETTERS} letters), {len(bench_posts):,} generated posts ({size:.1f} MB) "
          f"and the {len(real)} corpus posts; CPU, best of 3")  # fmt: skip
    print(f"compile: off {compile_off * 1000:.0f} ms, on {compile_on * 1000:.0f} ms")
    for label, docs in (("generated", bench_posts), ("corpus", real)):
        t_off = cpu(lambda docs=docs: m_off.match_many(docs))
        t_on = cpu(lambda docs=docs: m_on.match_many(docs))
        mb = match_bench.megabytes(docs)
        print(
            f"{label:10} off {mb / t_off:6.1f} MB/s   on {mb / t_on:6.1f} MB/s   on/off time ratio {t_on / t_off:.2f}"
        )
    default_off = cpu(lambda: off.match_many(real))
    default_on = cpu(lambda: on.match_many(real))
    print(f"default topics on the corpus: on/off time ratio {default_on / default_off:.2f}")


def _naive(term: str) -> re.Pattern[str]:
    """A naive transliteration (one spelling, ICAO for Russian, plain for Kazakh; no minimum length)."""
    word = term.rstrip("*").casefold()
    scheme = KK["plain (marks dropped)"] if any(c in translit.KAZAKH_ONLY for c in word) else RU["ICAO 2013"]
    return re.compile(r"\b" + re.escape(scheme(word)) + (r"\w*" if term.endswith("*") else r"\b"))


if __name__ == "__main__":
    main()
