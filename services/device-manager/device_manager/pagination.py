"""Page envelopes: {items, total, page, page_size, links: {next, prev}} from a repository page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import request


@dataclass(frozen=True)
class PageRequest:
    """What a repository needs to fetch one page: bounds, sort key and filters (no flask)."""

    page: int
    page_size: int
    sort: str
    filters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> PageRequest:
        """Split parsed ListArgsSchema output into bounds, sort and the remaining filters."""
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


def page_response(page: Page, req: PageRequest) -> dict[str, Any]:
    """The response body for a page, with links that keep the current query string."""
    last = max(1, -(-page.total // req.page_size))
    nxt = _link(req.page + 1, req.page_size) if req.page < last else None
    prev = _link(min(req.page - 1, last), req.page_size) if req.page > 1 else None
    return {"items": page.items, "total": page.total, "page": req.page, "page_size": req.page_size,
            "links": {"next": nxt, "prev": prev}}


def _link(page: int, page_size: int) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "page_size")]
    query += [("page", str(page)), ("page_size", str(page_size))]
    return f"{request.path}?{urlencode(query)}"
