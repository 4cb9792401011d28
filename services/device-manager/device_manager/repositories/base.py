"""Shared query building: WHERE clauses from whitelisted filters and one page with its total."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg2 import sql

from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database


class Filters:
    """Accumulates SQL conditions and their parameters; column text comes only from code, never from input."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> Filters:
        """Add a condition with %s placeholders."""
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def exact(self, filters: Mapping[str, Any], names: Iterable[str]) -> Filters:
        """`name = value` for each whitelisted name present; a list value means any of its items."""
        for name in names:
            value = filters.get(name)
            if isinstance(value, list | tuple):
                if value:
                    self.add(f"{name} = ANY(%s)", list(value))
            elif value is not None:
                self.add(f"{name} = %s", value)
        return self

    def between(self, filters: Mapping[str, Any], column: str) -> Filters:
        """`since` (inclusive) and `until` (exclusive) bounds on a time column."""
        if filters.get("since") is not None:
            self.add(f"{column} >= %s", filters["since"])
        if filters.get("until") is not None:
            self.add(f"{column} < %s", filters["until"])
        return self

    def where(self) -> str:
        """The WHERE clause (empty when unfiltered)."""
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


def order_by(sort: str, columns: Mapping[str, str], tiebreak: str) -> str:
    """ORDER BY from a whitelisted sort key (`field` or `-field`) and a unique tiebreak column."""
    key = sort.lstrip("-")
    if key not in columns:
        raise ValueError(f"sort key {key!r} is not whitelisted")
    direction = "DESC" if sort.startswith("-") else "ASC"
    return f" ORDER BY {columns[key]} {direction} NULLS LAST, {tiebreak} {direction}"


def fetch_page(db: Database, select: str, from_: str, filters: Filters, req: PageRequest,
               sort_columns: Mapping[str, str], tiebreak: str) -> Page:
    """Run a count and a LIMIT/OFFSET query over the same FROM/WHERE; rows come back as dicts."""
    where = filters.where()
    with db.transaction(dict_rows=True) as cur:
        cur.execute(sql.SQL(f"SELECT count(*) AS n FROM {from_}{where}"), filters.params)  # noqa: S608
        total = cur.fetchone()["n"]
        order = order_by(req.sort, sort_columns, tiebreak)
        query = f"SELECT {select} FROM {from_}{where}{order} LIMIT %s OFFSET %s"  # noqa: S608
        cur.execute(sql.SQL(query), [*filters.params, req.page_size, req.offset])
        return Page(items=[dict(r) for r in cur.fetchall()], total=total)


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so user input matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
