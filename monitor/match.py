"""Compiled topic matcher: which configured topics a post's title and text match.

Pure: does no I/O. Takes the topics once (`Matcher(topics)`), then a title and a text; returns Matches.

The term syntax is DESIGN.md's ("Term syntax"); where it is silent, this module decides:

- Folding, applied alike to terms and posts (`fold`): the apostrophe variants ' ’ ‘ ‛ ʼ ʻ ` ´ ′ become
  one character; NFKC (decomposed й = и + breve is й; fullwidth letters, ligatures and superscript
  digits become plain ones); Unicode case folding (ß = ss, ς = σ, Kazakh Қ = қ, Latin İ = i);
  combining acute and grave marks that stay uncomposed are dropped (Russian stress marks:
  сепарати́зм = сепаратизм); soft hyphens and zero-width joiners are dropped; ё = е (a Russian writer
  often types е for ё, so a term with either letter matches both).
- A word starts with a letter or digit (`str.isalnum`) and goes on over letters, digits, combining
  marks and any apostrophe that has a word character before it and a letter or digit after it. So
  "People's" is one word; "Peoples" and "people s" are other words and do not match it, and a
  leading or trailing quote ('People') is punctuation.
- Everything else separates words: spaces, punctuation, hyphens ("про-сепаратистский" holds the word
  "сепаратистский"), underscores, symbols, emoji, and a combining mark that follows no word.
- `word*` matches any word that starts so; `*` may end any word of a phrase ("народн* совет*"). No
  leading wildcard, no stemming: "Народный совет" matches only those two word forms ("Народный
  совета" needs "совет*"), so write "Народн* совет*" for every inflection. "council" does not match
  "councils", "separatism" does not match "antiseparatism", "separatis*" does not match "separate".
- A phrase matches its words in order with any run of non-word characters between them, line breaks
  included, but never across the boundary between title and text.
- Reported term: for each matched topic, the `any` term whose match starts earliest in the post (the
  title comes first); on a tie, the one listed first in the config.

- `transliterate: true` (a topic option): each of the topic's terms with Cyrillic letters (at least
  `translit.MIN_LETTERS` of them) also matches its Latin renderings, under the same rules (whole words,
  `*`, phrases); `translit` says which schemes apply and why. The reported term is the configured one.

How: an Aho-Corasick automaton over the folded post finds each occurrence of every term's first word
(the part before any `*`); only those candidates are checked in Python for word boundaries and, for a
phrase, the words that follow. Cost per post: one linear scan plus a few steps per candidate. A term's
Latin renderings add keys to the same automaton (the first characters of its first word's renderings,
a bounded set: `translit.first_keys`), and a candidate there is checked with one compiled expression
per word (a per-letter alternation), so the scan itself costs the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick

from monitor import translit
from monitor.exceptions import ConfigError
from monitor.worktypes import Match, TopicSpec

__all__ = ["Matcher", "fold", "term_problem"]

# Typed in place of ' by keyboards, word processors and transliteration conventions.
_APOSTROPHES = ("’", "‘", "‛", "ʼ", "ʻ", "`", "′")  # and ´, see fold
# Invisible inside words: soft hyphen, zero-width non-joiner and joiner, word joiner, BOM.
_INVISIBLE = ("\u00ad", "\u200c", "\u200d", "\u2060", "\ufeff")
# Stress marks over Cyrillic vowels have no composed form, so they survive NFKC: drop them.
_STRESS_MARKS = ("\u0301", "\u0300")
# Joins title and text: a separator that no phrase crosses (a NUL inside a post becomes a space).
_TITLE_END = "\x00"
_MIN_PREFIX = 2
# Kinds of compiled term: one whole word, one prefix (`word*`), several words, Latin renderings of a term.
_WORD, _PREFIX, _PHRASE, _LATIN = 0, 1, 2, 3
# Letters by falling frequency in Russian, English and Kazakh text, interleaved (see _build_automaton).
_LETTER_ORDER = "оeаеtыaиoінiтnсsрhлвrдdкlқмcuбпmуwжяfғgзьyйгpbvшчkjңхxqәzөю'үц0ұщ1һэ2ф3ъ456789"
_FREQUENT_SEPARATORS = " \n,."
_NEVER = "\x01"  # a control character that never follows a separator in real text
_YO = "\ue000"  # stands for ё while a term is folded (a private-use character passes fold unchanged)

_category = unicodedata.category
_normalize = unicodedata.normalize

Word = tuple[str, bool]  # (folded literal, is a prefix: the term wrote `literal*`)
LatinWord = tuple["re.Pattern[str]", bool]  # (the renderings of one word, matched at its start; is a prefix)


def fold(text: str) -> str:
    """Text as the matcher compares it: NFKC, case-folded, apostrophes unified, ё = е (see above)."""
    if "´" in text:  # NFKC would make it a space and a combining accent
        text = text.replace("´", "'")
    for invisible in _INVISIBLE:
        if invisible in text:
            text = text.replace(invisible, "")
    text = _normalize("NFKC", text)
    folded = text.casefold()
    recompose = len(folded) != len(text)  # expanding folds (ß, İ, ΐ) may leave decomposed sequences
    if "\u0307" in folded:  # casefold("İ") is i + dot above; Turkish and Kazakh Latin İ is plain i
        folded = folded.replace("i\u0307", "i")
        recompose = True
    for mark in _STRESS_MARKS:
        if mark in folded:
            folded = folded.replace(mark, "")
            recompose = True
    if recompose:
        folded = _normalize("NFKC", folded)
    for variant in _APOSTROPHES:  # after NFKC, which makes ŉ into ʼn
        if variant in folded:
            folded = folded.replace(variant, "'")
    if "ё" in folded:
        folded = folded.replace("ё", "е")
    return folded


def _is_mark(char: str) -> bool:
    return char >= "\u0300" and _category(char)[0] == "M"


def _in_word(s: str, index: int) -> bool:
    """Whether s[index], not an apostrophe, belongs to a word: a letter or digit, or marks after one."""
    while index >= 0:
        char = s[index]
        if char.isalnum():
            return True
        if not _is_mark(char):
            return False
        index -= 1
    return False


def _starts_word(s: str, start: int) -> bool:
    """Whether a word begins at `start`, where s[start] is a letter or digit."""
    if start == 0:
        return True
    before = s[start - 1]
    if before == "'":  # an apostrophe between word characters joins them
        return not (start > 1 and _in_word(s, start - 2))
    return not _in_word(s, start - 1)


def _ends_word(s: str, end: int, n: int) -> bool:
    """Whether the word that includes s[end - 1] ends there."""
    if end >= n:
        return True
    after = s[end]
    if after.isalnum() or _is_mark(after):
        return False
    return not (after == "'" and end + 1 < n and s[end + 1].isalnum())


def _word_end(s: str, pos: int, n: int) -> int:
    """The end of the word that includes s[pos - 1]."""
    while pos < n:
        char = s[pos]
        if not (char.isalnum() or _is_mark(char) or (char == "'" and pos + 1 < n and s[pos + 1].isalnum())):
            break
        pos += 1
    return pos


def _rest_matches(s: str, pos: int, n: int, words: tuple[Word, ...]) -> bool:
    """Whether words[0], whose literal ends at `pos`, ends as it should and the other words follow."""
    if words[0][1]:
        pos = _word_end(s, pos, n)
    elif not _ends_word(s, pos, n):
        return False
    for literal, prefix in words[1:]:
        while pos < n and not s[pos].isalnum():  # the gap: the previous word has ended, skip to the next
            if s[pos] == _TITLE_END:
                return False
            pos += 1
        if not s.startswith(literal, pos):
            return False
        pos += len(literal)
        if prefix:
            pos = _word_end(s, pos, n)
        elif not _ends_word(s, pos, n):
            return False
    return True


def _latin_matches(s: str, pos: int, n: int, words: tuple[LatinWord, ...]) -> bool:
    """Whether the renderings of `words` match from `pos` (a word start): each word whole (or a prefix),
    the later ones after a gap, as in `_rest_matches`."""
    for index, (pattern, prefix) in enumerate(words):
        if index:
            while pos < n and not s[pos].isalnum():
                if s[pos] == _TITLE_END:
                    return False
                pos += 1
        found = pattern.match(s, pos)
        if found is None:
            return False
        pos = found.end()
        if prefix:
            pos = _word_end(s, pos, n)
        elif not _ends_word(s, pos, n):  # the expression has checked letters and apostrophes; marks too
            return False
    return True


def _latin(words: tuple[Word, ...]) -> tuple[frozenset[str], tuple[LatinWord, ...]] | None:
    """The Latin renderings of a parsed term: the automaton keys of its first word, and one expression per
    word; None when the term has no Cyrillic to render or too few letters (translit.transliterable)."""
    literals = [literal for literal, _ in words]
    if not translit.transliterable(literals):
        return None
    compiled = tuple(
        (re.compile(translit.latin_pattern(literal, prefix, literals)), prefix) for literal, prefix in words
    )
    return translit.first_keys(literals[0], literals), compiled


def _parse_term(term: str, keep_yo: bool = False) -> tuple[Word, ...] | str:
    """The folded words of a term, read like a post's words, or why the term is invalid. `keep_yo` keeps ё
    apart from е (its Latin renderings differ: yo, jo, io)."""
    text = fold(term.replace("ё", _YO).replace("Ё", _YO)).replace(_YO, "ё") if keep_yo else fold(term)
    words: list[Word] = []
    current: list[str] = []
    for index, char in enumerate(text):
        following = text[index + 1] if index + 1 < len(text) else ""
        if char.isalnum() or (current and (_is_mark(char) or (char == "'" and following.isalnum()))):
            current.append(char)
        elif char == "*":
            if not current:
                if not text.replace("*", "").strip():
                    return "'*' alone is not a term: put it at the end of a word, as in 'separatist*'"
                return f"'*' must end a word, as in 'separatist*' ({term!r})"
            if following.isalnum():
                return f"'*' must end a word, as in 'separatist*' ({term!r})"
            prefix = "".join(current)
            if sum(1 for c in prefix if c.isalnum()) < _MIN_PREFIX:
                return f"prefix {prefix + '*'!r} is too short: write at least {_MIN_PREFIX} letters before '*'"
            words.append((prefix, True))
            current = []
        elif current:
            words.append(("".join(current), False))
            current = []
    if current:
        words.append(("".join(current), False))
    if words:
        return tuple(words)
    return "empty term" if not text.strip() else f"no letters or digits in the term ({term!r})"


def term_problem(term: str) -> str | None:
    """Why a configured term is invalid (empty, only punctuation, '*' not at a word's end, '*' alone,
    a prefix shorter than 2 letters such as 'a*'), or None if it is valid."""
    parsed = _parse_term(term)
    return parsed if isinstance(parsed, str) else None


@dataclass(frozen=True)
class _Topic:
    """A topic compiled to pattern ids (one id per distinct folded term, shared across topics); a term with
    Latin renderings has two ids, either of which matches it."""

    name: str
    any: tuple[tuple[int, str], ...]  # (pattern id, the term as configured), in config order
    all: tuple[tuple[int, ...], ...]  # per term, its ids
    none: tuple[int, ...]


class Matcher:
    """Topics compiled once per config; `match` then costs one scan of the post."""

    def __init__(self, topics: Sequence[TopicSpec]) -> None:
        """Raises ConfigError listing every invalid term (config.py reports them first, with lines).
        A topic without `any` terms never matches."""
        problems: list[str] = []
        pattern_ids: dict[tuple[Word, ...], int] = {}
        latin_ids: dict[tuple[Word, ...], int] = {}  # terms whose Latin renderings are patterns too
        latin_patterns: dict[int, tuple[frozenset[str], tuple[LatinWord, ...]]] = {}

        def compile_terms(topic: TopicSpec, group: str, terms: tuple[str, ...]) -> list[tuple[tuple[int, ...], str]]:
            compiled = []
            for index, term in enumerate(terms):
                parsed = _parse_term(term)
                if isinstance(parsed, str):
                    problems.append(f"topics.{topic.name}.{group}[{index}]: {parsed}")
                    continue
                ids = [pattern_ids.setdefault(parsed, len(pattern_ids) + len(latin_ids))]
                if topic.transliterate:
                    spelled = _parse_term(term, keep_yo=True)
                    assert not isinstance(spelled, str)  # the same words as `parsed`
                    if spelled not in latin_ids and (latin := _latin(spelled)) is not None:
                        latin_ids[spelled] = len(pattern_ids) + len(latin_ids)
                        latin_patterns[latin_ids[spelled]] = latin
                    if spelled in latin_ids:
                        ids.append(latin_ids[spelled])
                compiled.append((tuple(ids), term))
            return compiled

        self._topics = tuple(
            _Topic(
                name=topic.name,
                any=tuple((pid, term) for ids, term in compile_terms(topic, "any", topic.any) for pid in ids),
                all=tuple(ids for ids, _ in compile_terms(topic, "all", topic.all)),
                none=tuple(pid for ids, _ in compile_terms(topic, "none", topic.none) for pid in ids),
            )
            for topic in topics
        )
        if problems:
            raise ConfigError(problems)
        count = len(pattern_ids) + len(latin_ids)
        self._any_topics: list[list[int]] = [[] for _ in range(count)]  # pattern id -> topics listing it
        for index, topic in enumerate(self._topics):
            for pid, _ in topic.any:
                if index not in self._any_topics[pid]:
                    self._any_topics[pid].append(index)
        self._automaton = _build_automaton(pattern_ids, latin_patterns) if count else None

    def match(self, title: str, text: str) -> tuple[Match, ...]:
        """One Match(topic, term) per matched topic, in config order; `term` is the configured `any`
        term whose match starts earliest in the post (title first), the first listed on a tie."""
        if self._automaton is None:
            return ()
        if _TITLE_END in title or _TITLE_END in text:  # a NUL inside a post is mere punctuation
            title, text = title.replace(_TITLE_END, " "), text.replace(_TITLE_END, " ")
        found = _scan(self._automaton, fold(title + _TITLE_END + text))
        return self._decide(found) if found else ()

    def match_many(self, docs: Iterable[tuple[str, str]]) -> list[tuple[Match, ...]]:
        """`match` for each (title, text), in order."""
        return [self.match(title, text) for title, text in docs]

    def _decide(self, found: dict[int, int]) -> tuple[Match, ...]:
        candidates = {index for pid in found for index in self._any_topics[pid]}
        matches = []
        for index in sorted(candidates):
            topic = self._topics[index]
            if any(pid in found for pid in topic.none) or not all(any(p in found for p in ids) for ids in topic.all):
                continue
            # a term's ids sit next to each other in `any`, so `order` still ranks terms as configured
            hits = [(found[pid], order, term) for order, (pid, term) in enumerate(topic.any) if pid in found]
            matches.append(Match(topic=topic.name, term=min(hits)[2]))
        return tuple(matches)


def _scan(automaton: ahocorasick.Automaton, s: str) -> dict[int, int]:
    """Pattern id -> start of its earliest match in the folded post `s`."""
    found: dict[int, int] = {}
    n = len(s)
    for last, (length, patterns) in automaton.iter(s):
        start = last - length + 1
        if start:  # most candidates sit inside a longer word: reject those first, cheaply
            before = s[start - 1]
            if before.isalnum() or ((before == "'" or before >= "\u0300") and not _starts_word(s, start)):
                continue
        for pid, kind, words in patterns:
            if pid in found and (kind != _LATIN or found[pid] <= start):
                continue  # a key's hits come in order of their end, the first is the earliest (Latin keys vary)
            if (
                kind == _PREFIX
                or (kind == _WORD and _ends_word(s, last + 1, n))
                or (kind == _PHRASE and _rest_matches(s, last + 1, n, words))
                or (kind == _LATIN and _latin_matches(s, start, n, words))
            ):
                found[pid] = start
    return found


def _rank(char: str) -> int:
    index = _LETTER_ORDER.find(char)
    return index if index >= 0 else len(_LETTER_ORDER) + ord(char)


def _build_automaton(
    pattern_ids: dict[tuple[Word, ...], int], latin: dict[int, tuple[frozenset[str], tuple[LatinWord, ...]]]
) -> ahocorasick.Automaton:
    """Key: a pattern's first literal (for Latin renderings: each of their keys); value: (key length,
    ((pattern id, kind, words), ...)) for the patterns sharing that key."""
    by_key: dict[str, list[tuple[int, int, tuple[Word, ...] | tuple[LatinWord, ...]]]] = {}
    for words, pid in pattern_ids.items():
        kind = _PHRASE if len(words) > 1 else _PREFIX if words[0][1] else _WORD
        by_key.setdefault(words[0][0], []).append((pid, kind, words))
    for pid, (keys, latin_words) in latin.items():
        for key in keys:
            by_key.setdefault(key, []).append((pid, _LATIN, latin_words))
    automaton = ahocorasick.Automaton()
    # A trie node searches its children in insertion order: frequent characters first, and keys that
    # never match to put the frequent separators at the root's head, scan ~10% faster (measured).
    for separator in _FREQUENT_SEPARATORS:
        automaton.add_word(separator + _NEVER, (2, ()))
    for key in sorted(by_key, key=lambda key: [_rank(char) for char in key]):
        automaton.add_word(key, (len(key), tuple(by_key[key])))
    automaton.make_automaton()
    return automaton
