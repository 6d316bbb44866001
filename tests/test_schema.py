"""monitor.schema: every problem of a section found in one pass, each at its location, in plain words."""

from __future__ import annotations

import pickle
from datetime import timedelta
from typing import Annotated, Literal

import msgspec
import pytest

from monitor.schema import Before, InvalidError, Parse, Section, validate
from monitor.units import parse_duration


def _even(value: object) -> int:
    if not isinstance(value, int) or value % 2:
        raise ValueError(f"{value!r} is not an even number")
    return value


def _scope(value: object, context: dict[str, tuple[str, ...]]) -> str:
    if value not in context.get("scopes", ()):
        raise ValueError(f"unknown scope {value!r}")
    return str(value)


class Inner(Section, frozen=True, kw_only=True):
    mode: Literal["fast", "safe"] = "safe"
    every: Annotated[timedelta, Parse(parse_duration)] = timedelta(minutes=1)


class Outer(Section, frozen=True, kw_only=True):
    name: str
    count: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    even: Annotated[int, Parse(_even)] | None = None
    flag: bool = False
    inner: Inner = Inner()
    inners: tuple[Inner, ...] = ()
    tags: Annotated[tuple[str, ...], Before(lambda v: [v] if isinstance(v, str) else v)] = ()
    scopes: tuple[Annotated[str, Parse(_scope, context=True)], ...] = ()

    def __post_init__(self) -> None:
        if self.flag and self.count > 5:
            raise ValueError("flag allows a count of 5 at most")


class Child(Outer, frozen=True, kw_only=True):
    url: str  # required after the parent's optional keys: the reason every subclass is keyword-only


def problems(model: type[Section], data: object, **context: object) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(InvalidError) as info:
        validate(model, data, context)
    return info.value.problems


def test_a_valid_mapping_gives_frozen_values_converted_by_their_parsers() -> None:
    value = validate(
        Outer,
        {"name": "a", "count": "3", "even": 4, "inner": {"every": "10m"}, "tags": "one", "scopes": ["x"]},
        {"scopes": ("x", "y")},
    )
    assert value == Outer(
        name="a", count=3, even=4, inner=Inner(every=timedelta(minutes=10)), tags=("one",), scopes=("x",)
    )
    with pytest.raises(AttributeError):
        value.name = "b"  # type: ignore[misc]
    assert hash(value) == hash(pickle.loads(pickle.dumps(value)))  # frozen and picklable, nested sections too


def test_every_problem_of_a_section_is_reported_at_once_each_at_its_location() -> None:
    found = problems(
        Outer,
        {
            "count": 0,
            "even": 3,
            "flag": "maybe",
            "bogus": 1,
            "inner": {"mode": "turbo", "every": "5 parsecs", "extra": True},
            "inners": [{"mode": "fast"}, {"mode": 1}, "x"],
            "scopes": ["x", "nope", "z"],
        },
        scopes=("x",),
    )
    assert found == [
        (("bogus",), "unknown key"),
        (("name",), "required key is missing"),
        (("count",), "expected a whole number >= 1, got 0"),
        (("even",), "3 is not an even number"),
        (("flag",), "expected true or false, got 'maybe'"),
        (("inner", "extra"), "unknown key"),
        (("inner", "mode"), "expected one of: fast, safe (got 'turbo')"),
        (("inner", "every"), "expected a duration like 30s, 10m, 1h or 7d, got '5 parsecs'"),
        (("inners", 1, "mode"), "expected one of: fast, safe (got 1)"),
        (("inners", 2), "expected a mapping, got 'x'"),
        (("scopes", 1), "unknown scope 'nope'"),
        (("scopes", 2), "unknown scope 'z'"),
    ]


def test_wrong_shapes_are_named_in_the_users_words() -> None:
    assert problems(Outer, ["a"]) == [((), "expected a mapping, got a list")]
    assert problems(Outer, {"name": 5}) == [(("name",), "expected text, got 5")]
    assert problems(Outer, {"name": "a", "count": True}) == [(("count",), "expected a whole number, got true")]
    assert problems(Outer, {"name": "a", "inners": {"mode": "fast"}}) == [
        (("inners",), "expected a list, got a mapping")
    ]
    assert problems(Outer, {"name": "a", "inner": None}) == [(("inner",), "expected a mapping, got nothing")]


def test_a_check_across_fields_is_reported_at_the_section_and_only_once_its_fields_are_valid() -> None:
    assert problems(Outer, {"name": "a", "flag": True, "count": 7}) == [((), "flag allows a count of 5 at most")]
    assert problems(Outer, {"name": "a", "flag": True, "count": 70}) == [
        (("count",), "expected a whole number <= 10, got 70")
    ]


def test_null_is_accepted_only_where_the_type_allows_none() -> None:
    assert validate(Outer, {"name": "a", "even": None}).even is None
    assert problems(Outer, {"name": None}) == [(("name",), "expected text, got nothing")]


def test_a_subclass_adds_required_keys_after_its_parents_optional_ones() -> None:
    assert validate(Child, {"name": "a", "url": "u"}) == Child(name="a", url="u")
    assert problems(Child, {"name": "a"}) == [(("url",), "required key is missing")]
