"""The Source protocol: one verb, ``read``, yielding events or parse errors (never raising mid-run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from healthsec.model import ClinicalMessage, Event, ParseError

RAW_TEXT = "text"  # field of a ClinicalMessage holding the raw message as received (it carries PHI)


def without_raw_text(event: Event) -> Event:
    """The event as it may be stored or sent on: without the raw message; metadata and findings stay."""
    if isinstance(event, ClinicalMessage) and RAW_TEXT in event.fields:
        return dataclasses.replace(event, fields={k: v for k, v in event.fields.items() if k != RAW_TEXT})
    return event


@runtime_checkable
class Source(Protocol):
    """Anything that yields events from one kind of input."""

    name: str

    def read(self) -> Iterator[Event | ParseError]: ...


@dataclass
class IterableSource:
    """A source over events already in memory (tests, the simulator, replays)."""

    name: str
    items: Iterable[Event | ParseError]

    def read(self) -> Iterator[Event | ParseError]:
        yield from self.items


@dataclass
class ReadReport:
    """What a run of a source produced: counts and the parse errors, each naming record and reason."""

    events: int = 0
    errors: list[ParseError] = field(default_factory=list)

    def add(self, item: Event | ParseError) -> bool:
        """Count one item; return True when it is an event."""
        if isinstance(item, ParseError):
            self.errors.append(item)
            return False
        self.events += 1
        return True
