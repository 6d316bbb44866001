"""The topic set's fingerprint: which topics were added, removed or redefined since the stored matches were made.

Pure: does no I/O; takes topic specs and stored fingerprints, returns fingerprints and differences.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import msgspec

from monitor.types import TopicSpec


def fingerprint(topic: TopicSpec) -> str:
    """A short stable hash of what decides the topic's matches (its terms and options, not its name's order)."""
    spec = asdict(topic)
    spec.pop("name")
    text = json.dumps(spec, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprints(topics: Sequence[TopicSpec]) -> dict[str, str]:
    return {t.name: fingerprint(t) for t in topics}


class TopicChanges(msgspec.Struct, frozen=True):
    """How the configured topics differ from those the stored matches follow."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = [
            f"{label}={','.join(names)}"
            for label, names in (("added", self.added), ("removed", self.removed), ("changed", self.changed))
            if names
        ]
        return " ".join(parts)


def changes(stored: Mapping[str, str], current: Mapping[str, str]) -> TopicChanges:
    return TopicChanges(
        added=tuple(sorted(set(current) - set(stored))),
        removed=tuple(sorted(set(stored) - set(current))),
        changed=tuple(sorted(t for t in set(stored) & set(current) if stored[t] != current[t])),
    )
