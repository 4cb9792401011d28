"""Page envelopes for the JSON API: {items, total, page, page_size, links: {next, prev}} from a domain Page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request

from device_manager.service.pagination import Page, PageRequest


def page_response(page: Page, req: PageRequest) -> dict[str, Any]:
    """The response body for a page, with links that keep the current query string."""
    last = page.last(req.page_size)
    nxt = _link(req.page + 1, req.page_size) if req.page < last else None
    prev = _link(min(req.page - 1, last), req.page_size) if req.page > 1 else None
    return {"items": page.items, "total": page.total, "page": req.page, "page_size": req.page_size,
            "links": {"next": nxt, "prev": prev}}


def _link(page: int, page_size: int) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "page_size")]
    query += [("page", str(page)), ("page_size", str(page_size))]
    return f"{request.path}?{urlencode(query)}"
