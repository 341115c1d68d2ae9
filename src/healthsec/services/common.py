"""What every use case shares: its error types (not found, invalid, refused) and one page of results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from healthsec.analyze.attack import AttackKB

T = TypeVar("T")


class ServiceError(Exception):
    """A use case refused; the message is one line for a person (the CLI prints it, the API sends it)."""


class NotFound(ServiceError, LookupError):
    """The record named does not exist (in the caller's organisation). The API answers 404."""

    def __init__(self, what: str, ident: str, *, message: str | None = None) -> None:
        super().__init__(message or f"no {what} {ident!r}")
        self.what = what
        self.ident = ident


class Invalid(ServiceError, ValueError):
    """The input is malformed; ``problems`` names each record and reason. The API answers 422.

    ``loc`` is where in a request body the fault is (e.g. ``("assets", 3)``), for the API's answer.
    """

    def __init__(
        self, message: str, problems: list[str] | None = None, *, loc: tuple[str | int, ...] = ()
    ) -> None:
        super().__init__(message)
        self.problems = problems or []
        self.loc = loc


class Refused(ServiceError):
    """Well-formed input, but the action would break a rule (lose an alert, leak). The API answers 409."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``total`` is None when it was not asked for (counting costs a query).

    ``next_after`` (keyset lists): the key to ask the next page with (``after=``), None on the last page.
    """

    items: list[T]
    limit: int
    offset: int
    total: int | None = None
    next_after: str | None = None

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, None on the last page."""
        end = self.offset + len(self.items)
        if self.total is not None:
            return end if end < self.total else None
        return end if len(self.items) == self.limit else None


def check_paging(limit: int, offset: int) -> None:
    if limit < 1:
        raise Invalid(f"limit must be at least 1, not {limit}")
    if offset < 0:
        raise Invalid(f"offset must not be negative, not {offset}")


def attack_kb() -> tuple[AttackKB | None, str | None]:
    """The pinned ATT&CK copy, or None and the reason (names then stay unresolved; nothing fails)."""
    from healthsec.ingest.attack_data import AttackDataError, load_attack

    try:
        return load_attack(), None
    except AttackDataError as exc:
        return None, f"ATT&CK data unavailable ({exc})"
