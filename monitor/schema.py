"""Config sections as frozen msgspec structs, and `validate`, which finds every problem of a section at once.

Pure: no I/O. A section is a `Section` subclass with typed fields; `Annotated[T, Parse(fn)]` marks a field
whose raw value `fn` turns into a T (or rejects with ValueError: "15m" into a timedelta, say), and
`Annotated[int, msgspec.Meta(ge=1)]` a bound. A subclass's `__post_init__` checks fields against each other
(raise ValueError). `validate` walks the raw mapping field by field, so that one call reports every unknown
key, missing key and bad value, each with its location as a tuple of keys and list indexes.

Why msgspec and not pydantic: every process paid pydantic's import (50 ms and 6.8 MiB, `bench/startup_floor.py`)
and the building of the config models before it polled; msgspec's import is about 5 ms and 1.0 MiB, its structs
cost microseconds to define, and a re-poll's CPU fell to 0.89x with this change alone (`bench/repoll_ab.py`).
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

import msgspec

Loc = tuple[str | int, ...]
S = TypeVar("S", bound="Section")


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: frozen (hashable, comparable), keyword-only, unknown keys rejected.
    msgspec (and mypy's reading of it) does not pass `frozen` and `kw_only` down: every subclass says
    `frozen=True, kw_only=True` again, so that a source type may add required keys after optional ones."""


class Parse(NamedTuple):  # NamedTuples, not dataclasses: a frozen dataclass costs about 0.5 ms to define
    """`Annotated` marker: `fn(value)` (or `fn(value, context)` with `context=True`) gives the field's value,
    or raises ValueError with a message for the user."""

    fn: Callable[..., object]
    context: bool = False


class Before(NamedTuple):
    """`Annotated` marker: `fn(value)` reshapes the raw value (one address -> a list of one), or rejects it
    with ValueError, before the field's type validates it."""

    fn: Callable[[object], object]


class InvalidError(Exception):
    """Every problem found in a section: (location, message) pairs, the location relative to the section."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, loc)) or '(top)'}: {message}" for loc, message in problems))
        self.problems = problems


class _Field(NamedTuple):
    name: str
    type: Any  # the declared type, Annotated metadata kept
    required: bool


@functools.cache
def _fields(model: type[Section]) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(model, include_extras=True)
    return tuple(_Field(f.name, hints[f.name], f.required) for f in msgspec.structs.fields(model))


def validate(model: type[S], data: object, context: Mapping[str, Any] | None = None) -> S:
    """`data` (as read from YAML) as a `model`; raises InvalidError listing every problem."""
    problems: list[tuple[Loc, str]] = []
    value = _section(model, data, (), dict(context or {}), problems)
    if problems or value is None:
        raise InvalidError(problems or [((), "invalid")])
    return value


def _section(
    model: type[S], data: object, loc: Loc, context: dict[str, Any], problems: list[tuple[Loc, str]]
) -> S | None:
    if not isinstance(data, dict):
        problems.append((loc, f"expected a mapping, got {_shown(data)}"))
        return None
    fields = _fields(model)
    known = {f.name for f in fields}
    before = len(problems)
    problems.extend(((*loc, key), "unknown key") for key in data if key not in known)
    values: dict[str, Any] = {}
    for field in fields:
        if field.name not in data:
            if field.required:
                problems.append(((*loc, field.name), "required key is missing"))
            continue
        ok, value = _value(field.type, data[field.name], (*loc, field.name), context, problems)
        if ok:
            values[field.name] = value
    if len(problems) > before:
        return None
    try:
        return model(**values)
    except (ValueError, TypeError) as exc:  # __post_init__: fields checked against each other
        problems.append((loc, str(exc)))
        return None


class _Shape(NamedTuple):
    """How `_value` treats a declared type, worked out once per type (typing's introspection is slow)."""

    parse: Parse | None  # the field's own parser, which gives the value
    before: tuple[Before, ...]  # reshapers of the raw value, applied in order
    form: Literal["optional", "items", "literal", "section", "convert"]
    inner: Any  # optional: the type besides None; items: the element type; literal: the values; else the type


@functools.cache
def _shape(kind: Any) -> _Shape:
    parse: Parse | None = None
    before: tuple[Before, ...] = ()
    if get_origin(kind) is typing.Annotated:
        markers = kind.__metadata__
        parse = next((m for m in markers if isinstance(m, Parse)), None)
        before = tuple(m for m in markers if isinstance(m, Before))
        rest = tuple(m for m in markers if not isinstance(m, Parse | Before))  # msgspec.Meta bounds
        kind = typing.Annotated[(kind.__origin__, *rest)] if rest else kind.__origin__
    origin, args = get_origin(kind), get_args(kind)
    others = [a for a in args if a is not type(None)]
    if origin in (Union, types.UnionType) and len(others) == 1 and len(args) == 2:
        return _Shape(parse, before, "optional", others[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _Shape(parse, before, "items", args[0])
    if origin is Literal:
        return _Shape(parse, before, "literal", args)
    if isinstance(kind, type) and issubclass(kind, Section):
        return _Shape(parse, before, "section", kind)
    return _Shape(parse, before, "convert", kind)


def _value(
    kind: Any, raw: object, loc: Loc, context: dict[str, Any], problems: list[tuple[Loc, str]]
) -> tuple[bool, Any]:
    """(True, the value of type `kind`), or (False, None) with the problems recorded."""
    shape = _shape(kind)
    if shape.parse is not None or shape.before:
        try:
            for before in shape.before:
                raw = before.fn(raw)
            if shape.parse is not None:
                return True, shape.parse.fn(raw, context) if shape.parse.context else shape.parse.fn(raw)
        except ValueError as exc:
            problems.append((loc, str(exc)))
            return False, None
    if shape.form == "optional":
        return (True, None) if raw is None else _value(shape.inner, raw, loc, context, problems)
    if shape.form == "items":
        return _items(shape.inner, raw, loc, context, problems)
    if shape.form == "literal":
        if any(raw == allowed and type(raw) is type(allowed) for allowed in shape.inner):  # True is not 1
            return True, raw
        problems.append((loc, f"expected one of: {', '.join(map(str, shape.inner))} (got {_shown(raw)})"))
        return False, None
    if shape.form == "section":
        value = _section(shape.inner, raw, loc, context, problems)
        return value is not None, value
    if type(raw) is shape.inner:  # already what is declared (most values of a config): nothing to convert
        return True, raw
    try:
        return True, msgspec.convert(raw, shape.inner, strict=False)
    except msgspec.ValidationError as exc:
        where, message = _split(str(exc))
        if not where:  # the value itself: show it, as the user wrote it, in place of msgspec's type of it
            message = f"{message.split(', got ', 1)[0]}, got {_shown(raw)}"
        problems.append(((*loc, *where), message))
        return False, None


def _items(
    kind: Any, raw: object, loc: Loc, context: dict[str, Any], problems: list[tuple[Loc, str]]
) -> tuple[bool, Any]:
    if not isinstance(raw, list | tuple):
        problems.append((loc, f"expected a list, got {_shown(raw)}"))
        return False, None
    results = [_value(kind, item, (*loc, index), context, problems) for index, item in enumerate(raw)]
    if not all(ok for ok, _ in results):
        return False, None
    return True, tuple(value for _, value in results)


_AT = re.compile(r" - at `\$((?:\.[^.\[`]+|\[\d+\])*)`$")
_STEP = re.compile(r"\.([^.\[`]+)|\[(\d+)\]")
_TYPE = re.compile(r"`([^`]+)`")
_NAMES = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _split(message: str) -> tuple[Loc, str]:
    """msgspec's "Expected `int` >= 1 - at `$.a[0]`" as (("a", 0), "expected a whole number >= 1")."""
    where: Loc = ()
    if m := _AT.search(message):
        where = tuple(key if key else int(index) for key, index in _STEP.findall(m.group(1)))
        message = message[: m.start()]
    message = _TYPE.sub(lambda t: _type_words(t.group(1)), message)
    return where, message[:1].lower() + message[1:]


def _type_words(expression: str) -> str:
    names = [part.strip() for part in expression.split("|") if part.strip() != "null"] or ["null"]
    return " or ".join(_NAMES.get(name, name) for name in names)


def _shown(value: object) -> str:
    """What the user wrote, as the messages show it: the value when short, else what kind of value it is."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
