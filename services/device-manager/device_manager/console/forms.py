"""Form and query-string values for the API's schemas, and the one way an action answers (fragment or redirect)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import flash, redirect, render_template, request, url_for

from device_manager.console.blueprint import is_htmx, notify
from device_manager.service.errors import Invalid
from device_manager.service.pagination import Page, PageRequest


def fields(*names: str) -> dict[str, Any]:
    """The named form fields that were filled in (empty means "not given", as an absent JSON key)."""
    return {n: v.strip() for n in names if (v := request.form.get(n, "")).strip()}


def json_object(name: str) -> dict[str, Any]:
    """A form field holding a JSON object ({} when empty)."""
    text = request.form.get(name, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be a JSON object, e.g. {{}}", {"json": {name: ["Not a JSON object."]}})
    return value


def checked(name: str) -> bool:
    """A checkbox."""
    return request.form.get(name) in ("on", "true", "1")


def query(schema: type[ma.Schema]) -> dict[str, Any]:
    """The query string as the list schema expects it: repeatable fields as lists, empty values dropped."""
    lists = {n for n, f in schema().fields.items() if isinstance(f, ma.fields.List)}
    args = request.args.to_dict(flat=False)
    return {k: ([x for x in v if x] if k in lists else v[-1]) for k, v in args.items()
            if any(v) and k in schema().fields}


def pages(page: Page, req: PageRequest) -> dict[str, Any]:
    """Pagination for templates: current page, last page, total and links keeping the other query values."""
    last = max(1, -(-page.total // req.page_size))
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "page"}

    def link(n: int) -> str:
        return url_for(request.endpoint, **(request.view_args or {}), **args, page=n)

    return {"page": req.page, "last": last, "total": page.total, "size": req.page_size,
            "prev": link(req.page - 1) if req.page > 1 else None,
            "next": link(req.page + 1) if req.page < last else None}


def list_page(full: str, table: str, target: str, page: Page, req: PageRequest, **context: Any) -> str:
    """A list page, or only its table when htmx swaps that element (`HX-Target`), with its pagination."""
    template = table if request.headers.get("HX-Target") == target else full
    return render_template(template, page=page, pg=pages(page, req), **context)


def done(message: str, fragment: str | None = None, **context: Any):
    """The answer to a successful action: htmx gets the fragment and a toast, a plain form post a redirect back."""
    if is_htmx():
        body = render_template(fragment, **context) if fragment else ""
        return body + notify(message)
    flash(message, "ok")
    ref = request.referrer or ""
    return redirect(ref if "/console" in ref else url_for("console.overview.index"), 303)
