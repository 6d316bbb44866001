"""Latin renderings of Kazakh and Russian Cyrillic words: for topics with `transliterate: true` and for
`monitor search --transliterate`.

Pure: does no I/O. Takes folded Cyrillic words (monitor.match.fold), returns regular expressions, literal
keys and spellings; nothing here reads the clock or the store.

Which rules: a term with a letter only Kazakh has (ә ғ қ ң ө ұ ү һ і) is Kazakh and gets the Kazakh schemes
only; any other Cyrillic term may be Russian or a Kazakh word without those letters (Астана, Жамбыл) and
gets the union of both. Each Cyrillic letter becomes the set of what the schemes below write for it, in
its context (an initial or post-vowel е may be "ye"; й may vanish after и/ы, as in -ый = -y). A word is
then a per-letter alternation: `_latin_regex` builds it once per term, so the cost of a variant-rich word
is one regular expression, not a product of spellings. Its literal keys for the matcher's Aho-Corasick
scan are the distinct first `KEY_LENGTH` characters of its renderings (`first_keys`), a bounded set; for
FTS, which needs spellings, `spellings` enumerates them best first up to a cap.

Sources of the tables (the letters as the standards print them, lower case):
- Kazakh 2021: the Latin alphabet presented by the Government on 28 January 2021 (31 letters: ä ğ ı i ñ
  ö ş ū ü ...; Wikipedia "Kazakh alphabets", Latin script table and its transliterated 1902 sample
  "Būryñğy ötken zamanda, bır danyşpan kısı"); earlier 2020 drafts wrote ң as ŋ.
- Kazakh 2017: Presidential Decree No. 569 of 26 October 2017 (apostrophes: a' g' i' n' o' s' c' u' y').
- Kazakh 2018: Decree No. 637 as amended 19 February 2018 (acutes: á ǵ ń ó ú ý, ı for и/й, sh, ch).
- Kazakh 2019 draft (Baitursynov Institute, November 2019): ç ğ ŋ ş w (cs.wikibooks "Kazaština/Přechod
  na latinku", which tabulates 2017, 2018 and 2019 side by side).
- Informal Kazakh: the official letters with their marks dropped, as typed on a plain keyboard ("Buryngy
  otken zamanda, bir danyspan kisi, Bagdat saharynyn", a mirror of the same Wikipedia sample), the
  older apostrophe-digraph habit ("Bu'ryn'g'y ... k'azysynyn' ... zhen'e", same mirror), Russian-style
  romanisation as in passports and the English press (Zhaiyk, Saraishyk, Tokayev, Mukhtar Tileuberdi on
  akorda.kz; ss for с between vowels as in Kassym), and the Turkish-based spelling of the diaspora (ı for
  ы, ş ç ğ ü ö, x for х: "Xalıq").
- Russian: ICAO Doc 9303 (Russian passports since 2013: х kh, ц ts, щ shch, ъ ie, ю iu, я ia, й i);
  GOST 7.79-2000 System B (й j, х x, ц cz/c, щ shh, ъ ``, ы y', ь `, э e`, ю yu, я ya); BGN/PCGN 1947
  (ye initially and after vowels, й y, ъ ʺ, ь ʹ, ё ë); the scholarly system (č š ž); and chat
  translit, which has no standard (h or kh or x, j for ж, w for ш, c or tz for ц, sch for щ, ' or
  nothing for ь).

Bounds: at most `MAX_KEYS` keys per word (the key length shrinks until they fit) and `MAX_SPELLINGS`
spellings per word for FTS (the most likely first). Short terms are not transliterated at all: fewer
than `MIN_LETTERS` letters in the whole term, and a Latin rendering is as likely to be another word
(Орал = oral, марш = marsh, нет = net): docs/detector.md is not the place; README "Topics" has the list.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Iterator, Sequence

__all__ = [
    "KAZAKH_ONLY",
    "KEY_LENGTH",
    "MAX_KEYS",
    "MAX_SPELLINGS",
    "MIN_LETTERS",
    "first_keys",
    "fts_query",
    "is_cyrillic",
    "latin_pattern",
    "options",
    "spellings",
    "transliterable",
]

KAZAKH_ONLY = frozenset("әғқңөұүһі")  # letters that make a term Kazakh
KEY_LENGTH = 4  # characters of a rendering used as the matcher's Aho-Corasick key
MAX_KEYS = 256  # per word; past it the key length shrinks (fewer, shorter keys)
MAX_SPELLINGS = 48  # per word, for FTS
MAX_FTS_VARIANTS = 96  # per query term (a phrase: the product of its words' spellings, best first)
MIN_LETTERS = 5  # a term with fewer Cyrillic letters is not transliterated (decoys: Орал = oral)

_VOWELS = frozenset("аәеёиоөуұүыіэюя")
_SIGNS = frozenset("ъь")

Table = dict[str, tuple[str, ...]]


def _table(pairs: str) -> Table:
    """'а=a ә=ä,a ...' -> {'а': ('a',), 'ә': ('ä', 'a')}; '-' stands for nothing."""
    out: Table = {}
    for item in pairs.split():
        letter, _, values = item.partition("=")
        out[letter] = tuple("" if v == "-" else v for v in values.split(","))
    return out


_COMMON = "а=a б=b в=v г=g д=d з=z к=k л=l м=m н=n о=o п=p р=r с=s т=t ф=f"

# Kazakh schemes, most used first.
_KAZAKH: tuple[Table, ...] = (
    # 2021 (and its 2020 draft's ŋ)
    _table(
        _COMMON + " ә=ä ғ=ğ е=e ё=io ж=j и=i й=i қ=q ң=ñ,ŋ ө=ö у=u ұ=ū ү=ü х=h һ=h ц=ts ч=ch ш=ş щ=şş "
        "ъ=- ы=y і=ı ь=- э=e ю=iu я=ia"
    ),
    # informal: the 2021 letters without their marks, and Russian-style (passport, English press)
    _table(
        _COMMON + " ә=a,ae ғ=g,gh е=e ё=yo,io ж=j,zh и=i й=i,y қ=q,k ң=n,ng ө=o,oe у=u,w ұ=u ү=u,ue х=h,kh "
        "һ=h ц=ts,c ч=ch ш=s,sh щ=sh,shch ъ=- ы=y,i і=i ь=- э=e ю=yu,iu я=ya,ia"
    ),
    # 2018
    _table(
        _COMMON + " ә=á ғ=ǵ е=e ё=io ж=j и=ı й=ı қ=q ң=ń ө=ó у=ý ұ=u ү=ú х=h һ=h ц=c ч=ch ш=sh щ=sh ъ=- "
        "ы=y і=i ь=- э=e ю=ıý я=ıa"
    ),
    # 2017
    _table(
        _COMMON + " ә=a' ғ=g' е=e ё=io ж=j и=i' й=i' қ=q ң=n' ө=o' у=y' ұ=u ү=u' х=h һ=h ц=c ч=c' ш=s' "
        "щ=s's' ъ=- ы=y і=i ь=- э=e ю=i'y' я=i'a"
    ),
    # Turkish-based (diaspora), the 2019 draft, and the older apostrophe digraphs
    _table(
        _COMMON + " ә=ä,e,ə ғ=ğ,g' е=e ё=yo ж=j,zh,c и=i,iy,ı й=y,j қ=k,q,k' ң=ñ,ŋ,n' ө=ö,o' у=u,w "
        "ұ=u,u',ŭ ү=ü,u ф=f х=h,x һ=h ц=ts ч=ç ш=ş,sh щ=şç ъ=- ы=ı,y і=i ь=- э=e ю=yu я=ya"
    ),
)

# Russian schemes, most used first.
_RUSSIAN: tuple[Table, ...] = (
    # ICAO Doc 9303 (passports since 2013)
    _table(_COMMON + " е=e ё=e ж=zh и=i й=i х=kh ц=ts ч=ch ш=sh щ=shch ъ=ie ы=y ь=- э=e ю=iu я=ia у=u"),
    # BGN/PCGN 1947 and its common simplification (no signs, ë as yo)
    _table(_COMMON + " е=e ё=ë,yo,e ж=zh и=i й=y х=kh ц=ts ч=ch ш=sh щ=shch ъ=ʺ,- ы=y ь=ʹ,- э=e ю=yu я=ya у=u"),
    # informal chat translit
    _table(
        _COMMON + " е=e ё=e,yo,jo ж=zh,j и=i й=y,i,j х=h,kh,x ц=c,ts,tz ч=ch ш=sh,w щ=sch,sh,shch,w ъ=-,' "
        "ы=y,i ь=-,' э=e ю=yu,ju,iu,u я=ya,ja,ia у=u"
    ),
    # GOST 7.79-2000 System B
    _table(_COMMON + " е=e ё=yo ж=zh и=i й=j х=x ц=cz,c ч=ch ш=sh щ=shh ъ='' ы=y' ь=' э=e' ю=yu я=ya у=u"),
    # scholarly (ISO 9 family)
    _table(_COMMON + " е=e ё=ë ж=ž и=i й=j х=x,ch ц=c ч=č ш=š щ=šč,ŝ ъ=ʺ ы=y ь=ʹ э=è,ė ю=ju,û я=ja,â у=u"),
)
# Only where it stands (start of a word, after a vowel or a sign): "ye", "je" for е, as BGN/PCGN writes.
_IOTATED = {"е": ("ye", "je"), "э": ()}


def is_cyrillic(char: str) -> bool:
    return "\u0400" <= char <= "\u04ff"


def transliterable(words: Sequence[str]) -> bool:
    """Whether a term (its folded words) gets Latin renderings: it has Cyrillic letters, MIN_LETTERS in all."""
    letters = sum(1 for word in words for char in word if is_cyrillic(char))
    return letters >= MIN_LETTERS


def _language(words: Sequence[str]) -> tuple[Table, ...]:
    if any(char in KAZAKH_ONLY for word in words for char in word):
        return _KAZAKH
    return _RUSSIAN + _KAZAKH


def options(word: str, index: int, tables: tuple[Table, ...]) -> tuple[str, ...]:
    """What the schemes write for word[index], most common first (by how many schemes write it)."""
    char = word[index]
    if not is_cyrillic(char):
        return (char,)
    votes: dict[str, float] = {}
    for rank, table in enumerate(tables):
        for place, value in enumerate(table.get(char, ())):
            votes[value] = votes.get(value, 0.0) + 1.0 - 0.01 * rank - 0.1 * place
    before = word[index - 1] if index else ""
    if char in _IOTATED and (not before or before in _VOWELS or before in _SIGNS or before == "й"):
        for value in _IOTATED[char]:
            votes[value] = votes.get(value, 0.0) + 0.5
    if char == "й" and before in ("и", "ы"):  # -ий, -ый written -i, -y
        votes[""] = votes.get("", 0.0) + 0.5
    after = word[index + 1] if index + 1 < len(word) else ""
    if char == "с" and before in _VOWELS and after in _VOWELS:  # Kassym, Aleksandr Bessonov: the press's ss
        votes["ss"] = votes.get("ss", 0.0) + 0.3
    if not index:
        votes.pop("", None)
    if not votes:  # a Cyrillic letter no table knows (Ukrainian ї, Serbian ђ): only itself
        return (char,)
    return tuple(sorted(votes, key=lambda value: (-votes[value], value)))


def _all_options(word: str, tables: tuple[Table, ...]) -> list[tuple[str, ...]]:
    return [options(word, index, tables) for index in range(len(word))]


# Where a whole word ends (match._ends_word): not before a letter or digit, nor an apostrophe and one.
_WORD_END = r"(?![^\W_]|'[^\W_])"


def latin_pattern(word: str, prefix: bool, language_of: Sequence[str]) -> str:
    """A regular expression, to match at a word's start in folded text, for the Latin renderings of
    `word` (a folded word of the term `language_of`); a whole word must end where the match does."""
    parts = []
    for alternatives in _all_options(word, _language(language_of)):
        escaped = sorted((re.escape(a) for a in alternatives), key=len, reverse=True)
        parts.append(escaped[0] if len(escaped) == 1 else "(?:" + "|".join(escaped) + ")")
    return "".join(parts) + ("" if prefix else _WORD_END)


def first_keys(word: str, language_of: Sequence[str]) -> frozenset[str]:
    """The distinct first KEY_LENGTH characters of the word's renderings (all of a shorter rendering);
    shorter keys when there would be more than MAX_KEYS."""
    per_letter = _all_options(word, _language(language_of))
    for length in range(KEY_LENGTH, 0, -1):
        keys: set[str] = set()
        stack = [(0, "")]
        while stack and len(keys) <= MAX_KEYS:
            index, sofar = stack.pop()
            if len(sofar) >= length or index == len(per_letter):
                keys.add(sofar[:length])
                continue
            stack.extend((index + 1, sofar + value) for value in per_letter[index])
        keys.discard("")
        if len(keys) <= MAX_KEYS:
            return frozenset(keys)
    raise AssertionError("unreachable: one-character keys are at most the options of one letter")


def spellings(word: str, language_of: Sequence[str], limit: int = MAX_SPELLINGS) -> list[str]:
    """Up to `limit` full renderings of `word`, the most likely first (fewest uncommon choices)."""
    per_letter = _all_options(word, _language(language_of))
    return [text for _, text in zip(range(limit), _best_first(per_letter, ""), strict=False)]


def _best_first(slots: Sequence[tuple[str, ...]], sep: str) -> Iterator[str]:
    """Each slot's values joined by `sep`, in order of the sum of the choices' ranks (0 = a slot's first
    value): the most common renderings first."""
    start = (0,) * len(slots)
    heap = [(0, start)]
    seen = {start}
    while heap:
        cost, choice = heapq.heappop(heap)
        yield sep.join(slots[i][c] for i, c in enumerate(choice))
        for i, c in enumerate(choice):
            if c + 1 < len(slots[i]):
                nxt = (*choice[:i], c + 1, *choice[i + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (cost + 1, nxt))


# ------------------------------------------------------------------------------------------------ FTS5

_FTS_TOKEN = re.compile(r'"(?:[^"]|"")*"\*?|[()]|[^\s()"]+')
_FTS_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_OPERATORS = frozenset(("AND", "OR", "NOT", "NEAR"))


def _fts_fold(text: str) -> str:
    """As FTS5's unicode61 remove_diacritics 2 sees a spelling: no marks, and an apostrophe splits tokens."""
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", " ", stripped.casefold()).strip()


def fts_query(query: str) -> str:
    """An FTS5 query with each Cyrillic word, prefix (`word*`) and phrase ("a b") ORed with its Latin
    spellings, the most likely first (at most MAX_FTS_VARIANTS each). Operators, parentheses, column
    filters and Latin words pass through unchanged. Short terms (under MIN_LETTERS letters) stay as
    they are, as in the matcher."""
    found = list(_FTS_TOKEN.finditer(query))
    if re.sub(r"\s", "", "".join(m.group() for m in found)) != re.sub(r"\s", "", query):
        return query  # e.g. an unbalanced quote: FTS5 decides what it means
    out: list[str] = []
    last_end, near_depth, depth = 0, -1, 0
    previous, previous_grouped = "", False
    for match in found:
        token = match.group()
        if token == "(":
            depth += 1
            if previous == "NEAR":
                near_depth = depth  # NEAR(...) takes phrases only: nothing inside is expanded
        elif token == ")":
            near_depth, depth = (-1 if depth == near_depth else near_depth), depth - 1
        new = token if near_depth > 0 else _token(token)
        grouped = new != token
        # FTS5 reads "a b" as a AND b, but not "(a OR x) b": spell the AND out next to a new group
        operand_before = previous not in _OPERATORS and previous != "(" and not previous.endswith(":") and previous
        operand_now = token not in _OPERATORS and token != ")"
        gap = query[last_end : match.start()]
        if operand_before and operand_now and (grouped or previous_grouped):
            gap = " AND "
        out += [gap, new]
        last_end, previous, previous_grouped = match.end(), token, grouped
    return "".join([*out, query[last_end:]])


def _token(token: str) -> str:
    column, colon, rest = token.rpartition(":") if not token.startswith('"') else ("", "", token)
    return column + colon + _expanded(rest) if rest else token


def _expanded(token: str) -> str:
    """One FTS5 word, prefix or phrase ORed with its Latin spellings; anything else as it is."""
    if token in _OPERATORS or token in "()":
        return token
    phrase = token.startswith('"')
    star = token.endswith("*")
    body = token[1 : token.rindex('"')].replace('""', '"') if phrase else token.rstrip("*")
    words = [w.casefold().replace("ё", "е") for w in _FTS_WORD.findall(body)]
    if not words or not transliterable(words):
        return token
    suffix = "*" if star else ""
    return "(" + " OR ".join([token, *(f'"{v}"{suffix}' for v in _phrase_spellings(words))]) + ")"


def _phrase_spellings(words: list[str]) -> list[str]:
    """Spellings of a phrase, best first: the words' spellings combined in order of their summed ranks."""
    per_word = []
    for word in words:
        if any(is_cyrillic(c) for c in word):
            seen: dict[str, None] = {}
            for text in spellings(word, words, MAX_SPELLINGS * 4):
                seen.setdefault(_fts_fold(text), None)
            per_word.append(tuple(seen)[:MAX_SPELLINGS])
        else:
            per_word.append((word,))
    return [text for _, text in zip(range(MAX_FTS_VARIANTS), _best_first(per_word, " "), strict=False)]
