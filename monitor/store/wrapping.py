"""The `wrapped` method decorator both backends use: a method's driver errors leave it as StoreError.

Each backend's errors.py owns its table from driver errors to StoreError; this only runs a method inside the
store's own `mapped(doing)` context, so the decorator is written once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar


class MapsErrors(Protocol):
    def mapped(self, doing: str) -> contextlib.AbstractContextManager[None]: ...


S = TypeVar("S", bound=MapsErrors)
P = ParamSpec("P")
R = TypeVar("R")


def wrapped(doing: str) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """A method decorator: the method's driver errors leave as StoreError (`doing` says what failed)."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        @functools.wraps(method)
        def inner(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with self.mapped(doing):
                return method(self, *args, **kwargs)

        return inner

    return decorate
