"""The change report of a deploy or teardown: one line per resource (created, updated, unchanged, ...).

Also :func:`outcome` (the action of an ensure step) and :func:`canonical` (one
spelling of a JSON document, to compare what is deployed with what is wanted).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

log = logging.getLogger("swlab.deploy")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Change:
    """What happened to one resource: created, updated, unchanged, deleted, absent or failed."""

    kind: str
    name: str
    action: str
    detail: str = ""


@dataclass
class ChangeReport:
    """Every resource touched, in order, each reported to ``progress`` as it happens (one line each)."""

    progress: Progress | None = None
    changes: list[Change] = field(default_factory=list)

    def record(self, kind: str, name: str, action: str, detail: str = "") -> Change:
        change = Change(kind, name, action, detail)
        self.changes.append(change)
        line = f"{action:<9} {kind:<20} {name}" + (f"  ({detail})" if detail else "")
        (self.progress or log.info)(line)
        return change

    def say(self, line: str) -> None:
        """A line that is not a resource (waiting, outputs written)."""
        (self.progress or log.info)(line)

    def by_action(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def all_unchanged(self) -> bool:
        return all(c.action == "unchanged" for c in self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out

    def as_list(self) -> list[dict[str, str]]:
        return [asdict(c) for c in self.changes]

    def summary(self) -> str:
        return ", ".join(f"{n} {a}" for a, n in sorted(self.counts().items())) or "nothing"


def outcome(created: bool, updated: Iterable[str]) -> tuple[str, str]:
    """``(action, detail)`` for a resource that was created, or updated in the listed aspects, or neither."""
    updated = list(updated)
    if created:
        return "created", ""
    return ("updated", ", ".join(updated)) if updated else ("unchanged", "")


def canonical(doc: Any) -> str:
    """A JSON document (or its text) in one canonical spelling, for comparisons."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
