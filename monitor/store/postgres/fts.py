"""Full-text search for the PostgreSQL store, with the SQLite store's tokens and query language.

Pure: does no I/O. Text is split and folded exactly as SQLite's FTS5 `unicode61 remove_diacritics 2` does it
(tables in `unicode61`, read off SQLite): case folded in every script, Latin accents removed, Cyrillic letters
such as й, ё, қ, ң, ү, ұ, ә, ө, і kept, no stemming. The words go into a `tsvector` written as a literal (so no
text search configuration or server locale touches them), title at weight A, text at weight B, with a gap
between them so that a phrase never spans from the title into the text.

A query in FTS5's syntax (words, `word*` prefixes, `"phrases"`, `a + b`, AND, OR, NOT, parentheses, the
columns `title:` and `text:`) becomes a `tsquery` literal; what FTS5 refuses to parse raises QueryError, so
the command line falls back to a phrase as it does on SQLite. NEAR and `^` are not translated (QueryError).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from monitor.exceptions import QueryError
from monitor.store.postgres.unicode61 import FOLD, SEPARATORS

_FOLD = str.maketrans(FOLD)


def _class(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


_TOKEN = re.compile(f"[^{_class(SEPARATORS)}]+")
MAX_LEXEME_BYTES = 2046  # PostgreSQL's limit for one word of a tsvector
MAX_POSITION = 16383  # and for a position (later words share the last one)
MAX_POSITIONS = 256  # positions kept per word (PostgreSQL keeps no more)
SNIPPET_TOKENS = 24  # as FTS5's snippet(..., 24) in the SQLite store
ELLIPSIS = "…"


@dataclass(frozen=True)
class Token:
    word: str  # folded
    start: int  # where it is in the original text
    end: int


def tokens(text: str) -> Iterator[Token]:
    """The words of `text` as FTS5 unicode61 sees them (folded), with their places in the original text."""
    for match in _TOKEN.finditer(text):
        word = match.group().translate(_FOLD)
        if word:
            yield Token(word, match.start(), match.end())


def words(text: str) -> list[str]:
    """The folded words of `text`. Folding first is the same as folding each token: no code point folds into a
    separator, and one that folds to nothing (a combining mark) is inside a token (tests/test_store_postgres.py)."""
    return _TOKEN.findall(text.translate(_FOLD))


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def document(title: str, text: str) -> str:
    """The `tsvector` literal of a post: title words at weight A, text words at B, one position apart more."""
    positions: dict[str, list[str]] = {}
    position = 0
    for weight, column in (("A", title), ("B", text)):
        for word in words(column):
            position += 1
            if len(word.encode()) > MAX_LEXEME_BYTES:
                continue
            places = positions.setdefault(word, [])
            if len(places) < MAX_POSITIONS:
                places.append(f"{min(position, MAX_POSITION)}{weight}")
        position += 1  # the gap: no phrase across the two columns
    return " ".join(f"{_lexeme(word)}:{','.join(places)}" for word, places in positions.items())


# ------------------------------------------------------------------------------------------ queries
@dataclass(frozen=True)
class Term:
    word: str
    prefix: bool


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: the `tsquery` literal (None when no post can match, e.g. a phrase of punctuation only), and
    the words and prefixes it looks for (what a snippet highlights)."""

    tsquery: str | None
    terms: tuple[Term, ...]


_BAREWORD = re.compile(r"[A-Za-z0-9_\x1a\x80-\U0010ffff]+")
_PUNCT = "():+*-^{},"
_COLUMNS = {"title": "A", "text": "B"}


class _Lexer:
    """FTS5's query tokens: punctuation, strings ("" inside is a quote), barewords (letters, digits, _ and
    anything beyond ASCII); any other character is a syntax error, as in FTS5."""

    def __init__(self, query: str) -> None:
        self.items: list[tuple[str, str]] = []  # (kind, value): kind is a punctuation mark, "str", "word" or "end"
        index = 0
        while index < len(query):
            char = query[index]
            if char.isspace():
                index += 1
            elif char in _PUNCT:
                self.items.append((char, char))
                index += 1
            elif char == '"':
                end = index + 1
                value = []
                while True:
                    close = query.find('"', end)
                    if close < 0:
                        raise QueryError(f"bad query: unterminated string in {query!r}")
                    value.append(query[end:close])
                    if query.startswith('"', close + 1):
                        value.append('"')
                        end = close + 2
                        continue
                    index = close + 1
                    break
                self.items.append(("str", "".join(value)))
            else:
                match = _BAREWORD.match(query, index)
                if match is None:
                    raise QueryError(f'bad query: fts5: syntax error near "{char}"')
                self.items.append(("word", match.group()))
                index = match.end()
        self.items.append(("end", ""))
        self.at = 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        return self.items[min(self.at + ahead, len(self.items) - 1)]

    def take(self) -> tuple[str, str]:
        item = self.peek()
        self.at += 1
        return item


_NOTHING = None  # a phrase without words (FTS5 leaves it out; alone, it matches nothing)


class _Parser:
    """FTS5's grammar, NOT binding tightest, then AND (or two phrases side by side), then OR."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.lex = _Lexer(query)
        self.terms: list[Term] = []

    def error(self, near: str) -> QueryError:
        return QueryError(f'bad query: fts5: syntax error near "{near}"')

    def parse(self) -> SearchQuery:
        if self.lex.peek()[0] == "end":
            raise QueryError("bad query: empty")
        tree = self.any_of()
        kind, value = self.lex.peek()
        if kind != "end":
            raise self.error(value)
        return SearchQuery(tree, tuple(dict.fromkeys(self.terms)))

    def any_of(self) -> str | None:
        parts = [self.all_of()]
        while self.lex.peek() == ("word", "OR"):
            self.lex.take()
            parts.append(self.all_of())
        found = [p for p in parts if p is not _NOTHING]
        return "(" + " | ".join(found) + ")" if found else _NOTHING

    def all_of(self) -> str | None:
        parts = [self.without()]
        while True:
            kind, value = self.lex.peek()
            if (kind, value) == ("word", "AND"):
                self.lex.take()
            elif not self.starts_primary():
                break
            parts.append(self.without())
        found = [p for p in parts if p is not _NOTHING]  # FTS5 leaves out a phrase without words
        return "(" + " & ".join(found) + ")" if found else _NOTHING

    def without(self) -> str | None:
        kept = self.primary()
        while self.lex.peek() == ("word", "NOT"):
            self.lex.take()
            dropped = self.primary()
            if kept is not _NOTHING and dropped is not _NOTHING:
                kept = f"({kept} & !{dropped})"
        return kept

    def starts_primary(self) -> bool:
        kind, value = self.lex.peek()
        if kind == "word":
            return value not in ("OR", "AND", "NOT")
        return kind in ("str", "(", "-", "{")

    def primary(self) -> str | None:
        kind = self.lex.peek()[0]
        if kind == "(":
            self.lex.take()
            inner = self.any_of()
            if self.lex.take()[0] != ")":
                raise self.error(self.lex.peek()[1] or ")")
            return inner
        weight = self.column()
        return self.phrase(weight)

    def column(self) -> str:
        """`title:` or `text:` before a phrase: its weight ('' for both columns)."""
        kind, value = self.lex.peek()
        if kind in ("-", "{"):
            raise QueryError(f"bad query: column sets ({kind}) are not supported by the PostgreSQL store")
        if kind == "word" and self.lex.peek(1)[0] == ":":
            self.lex.take()
            self.lex.take()
            if value.lower() not in _COLUMNS:
                raise QueryError(f"bad query: no such column: {value}")
            return _COLUMNS[value.lower()]
        return ""

    def phrase(self, weight: str) -> str | None:
        """One phrase: strings and barewords joined by `+`, the last word a prefix when `*` follows."""
        found: list[str] = []
        while True:
            kind, value = self.lex.take()
            if kind == "word" and value == "NEAR" and self.lex.peek()[0] == "(":
                raise QueryError("bad query: NEAR is not supported by the PostgreSQL store")
            if kind == "^":
                raise QueryError("bad query: ^ (first token) is not supported by the PostgreSQL store")
            if kind not in ("word", "str") or (kind == "word" and value in ("OR", "AND", "NOT")):
                raise self.error(value or "end of query")
            found.extend(words(value))
            if self.lex.peek()[0] != "+":
                break
            self.lex.take()
        prefix = self.lex.peek()[0] == "*"
        if prefix:
            self.lex.take()
        if not found:
            return _NOTHING
        lexemes = []
        for index, word in enumerate(found):
            is_prefix = prefix and index == len(found) - 1
            self.terms.append(Term(word, is_prefix))
            marks = ("*" if is_prefix else "") + weight
            lexemes.append(_lexeme(word) + (":" + marks if marks else ""))
        return "(" + " <-> ".join(lexemes) + ")"


def parse_query(query: str) -> SearchQuery:
    """The `tsquery` for an FTS5 query; QueryError where FTS5 would refuse it (or it uses NEAR, ^ or {col}:)."""
    return _Parser(query).parse()


# ------------------------------------------------------------------------------------------ snippets
def _hits(found: list[Token], terms: Sequence[Term]) -> list[bool]:
    exact = {t.word for t in terms if not t.prefix}
    prefixes = tuple(t.word for t in terms if t.prefix)
    return [t.word in exact or (bool(prefixes) and t.word.startswith(prefixes)) for t in found]


def snippet(title: str, text: str, terms: Sequence[Term], start_mark: str, end_mark: str) -> str:
    """Up to SNIPPET_TOKENS words of the column with most hits, around them, each hit marked (FTS5's snippet,
    adjacent marks merged): `…` where the column was cut."""
    best: tuple[int, str, list[Token], list[bool]] | None = None
    for column in (title, text):
        found = list(tokens(column))
        hits = _hits(found, terms)
        if best is None or sum(hits) > best[0]:
            best = (sum(hits), column, found, hits)
    assert best is not None
    _, column, found, hits = best
    if not found:
        return column[:160]
    first = 0
    if len(found) > SNIPPET_TOKENS:  # start a few words before a hit, where the window holds the most hits
        starts = [max(0, min(i - 3, len(found) - SNIPPET_TOKENS)) for i, hit in enumerate(hits) if hit] or [0]
        first = max(starts, key=lambda s: (sum(hits[s : s + SNIPPET_TOKENS]), -s))
    last = min(len(found), first + SNIPPET_TOKENS)
    out = [ELLIPSIS if first else column[: found[0].start]]
    for index in range(first, last):
        token = found[index]
        piece = column[token.start : token.end]
        out.append(f"{start_mark}{piece}{end_mark}" if hits[index] else piece)
        tail = found[index + 1].start if index + 1 < len(found) else len(column)
        if index + 1 < last or last == len(found):
            out.append(column[token.end : tail])
    if last < len(found):
        out.append(ELLIPSIS)
    merged = "".join(out)
    return re.sub(f"{re.escape(end_mark)}(\\s+){re.escape(start_mark)}", r"\1", merged)
