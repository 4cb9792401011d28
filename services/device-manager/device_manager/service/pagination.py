"""Pages as values: what a repository needs to fetch one page, and what it returns (no transport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PageRequest:
    """Bounds, sort key and filters of one page."""

    page: int
    page_size: int
    sort: str
    filters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> PageRequest:
        """Split parsed list arguments into bounds, sort and the remaining (non-None) filters."""
        rest = {k: v for k, v in args.items() if k not in ("page", "page_size", "sort") and v is not None}
        return cls(page=args["page"], page_size=args["page_size"], sort=args["sort"], filters=rest)

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size


@dataclass(frozen=True)
class Page:
    """One page of rows and the total matching the filters."""

    items: list[dict[str, Any]]
    total: int

    def last(self, page_size: int) -> int:
        """The number of the last page (1 when empty)."""
        return max(1, -(-self.total // page_size))
