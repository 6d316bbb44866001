"""Collectors: one module per source type, each holding its config model and its `collect`; registered here.

A collector is `async def collect(source, session, state, now) -> Collected`: it fetches through the
session (which logs every request) and parses through `session.parse` (in a worker process, bounded in
time); it raises FetchError or ParseError when nothing could be read.

Adding a source type means one module (a `SourceBase` subclass for its keys and a `collect`) and one entry
in `_MODELS`; config loading takes the models from here (`SOURCE_MODELS`), so `monitor check`
validates the new keys with everything else.

The registry is lazy: a type's module is imported the first time its entry is read (a config naming a source
of that type), so a config of feeds never loads the HTML parser (selectolax) or the API collectors.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nothing at run time: a worker process that parses imports this package and stays small
    from monitor.collectors.fetch import Session
    from monitor.config import SourceBase
    from monitor.types import Collected, SourceState

__all__ = ["SOURCE_MODELS", "SOURCE_TYPES", "Collector", "SourceType"]

Collector = Callable[[Any, "Session", "SourceState", datetime], Awaitable["Collected"]]

# source type -> the name of its model class in monitor.collectors.<type> (whose `collect` polls it)
_MODELS = {
    "feed": "FeedSource",
    "html": "HtmlSource",
    "telegram": "TelegramSource",
    "mastodon": "MastodonSource",
    "reddit": "RedditSource",
    "vk": "VkSource",
}


@dataclass(frozen=True)
class SourceType:
    """One source type: the model of its keys in config.yaml and the collector that polls it."""

    model: type[SourceBase]
    collect: Collector


class _Registry(MutableMapping[str, SourceType]):
    """Source type name -> SourceType, each imported on first read. Writable (tests register their own)."""

    def __init__(self, models: Mapping[str, str]) -> None:
        self._models = dict(models)
        self._loaded: dict[str, SourceType] = {}
        self._names: dict[str, None] = dict.fromkeys(models)  # every name, in registration order

    def __getitem__(self, name: str) -> SourceType:
        kind = self._loaded.get(name)
        if kind is None:
            if name not in self._models:
                raise KeyError(name)
            module = importlib.import_module(f"monitor.collectors.{name}")
            kind = self._loaded[name] = SourceType(getattr(module, self._models[name]), module.collect)
        return kind

    def __setitem__(self, name: str, kind: SourceType) -> None:
        self._loaded[name] = kind
        self._names[name] = None

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._loaded.pop(name, None)
        self._models.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names  # without importing the module

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _Models(Mapping[str, "type[SourceBase]"]):
    """The registry's models, read through it (so each is imported when a config names its type)."""

    def __init__(self, types: Mapping[str, SourceType]) -> None:
        self._types = types

    def __getitem__(self, name: str) -> type[SourceBase]:
        return self._types[name].model

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)


SOURCE_TYPES: MutableMapping[str, SourceType] = _Registry(_MODELS)
SOURCE_MODELS: Mapping[str, type[SourceBase]] = _Models(SOURCE_TYPES)
