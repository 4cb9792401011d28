"""Shared schemas: the error body, UTC timestamps, page envelopes and list query arguments."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.extensions import get_settings


class Timestamp(fields.DateTime):
    """ISO 8601 timestamp always rendered in UTC with a Z suffix."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            return value.isoformat().replace("+00:00", "Z")
        return super()._serialize(value, attr, obj, **kwargs)


class ErrorBodySchema(ma.Schema):
    """The inside of every error response."""

    code = fields.String(required=True, metadata={"description": "Machine-readable error code"})
    message = fields.String(required=True)
    details = fields.Raw(required=True, metadata={"description": "Field errors or extra context"})


class ErrorSchema(ma.Schema):
    """Every 4xx and 5xx response: {"error": {"code", "message", "details"}}."""

    error = fields.Nested(ErrorBodySchema, required=True)


class LinksSchema(ma.Schema):
    """Links to the neighbouring pages (null at either end)."""

    next = fields.String(allow_none=True)
    prev = fields.String(allow_none=True)


class Items(fields.List):
    """List(Nested(schema)) in the OpenAPI spec. Rows that are dicts go through the nested schema's own field
    serializers without marshmallow's per-field lookup machinery, which was ~25 % of a list request's CPU under load
    (docs/benchmarks-api.md); same output. Schemas with dump hooks or unusual fields take the ordinary path."""

    def _serialize(self, value, attr, obj, **kwargs):
        plan = self._plan
        if value is None or plan is None or not all(isinstance(row, dict) for row in value):
            return super()._serialize(value, attr, obj, **kwargs)
        out = []
        for row in value:
            item = {}
            for key, name, serialize in plan:
                field_value = row.get(name, ma.missing)
                if field_value is not ma.missing:  # like marshmallow: an absent key is left out
                    item[key] = serialize(field_value, name, row)
            out.append(item)
        return out

    @functools.cached_property
    def _plan(self) -> list[tuple[str, str, object]] | None:
        """(output key, row key, field serializer) per dumped field, or None when marshmallow must do the dump."""
        schema = self.inner.schema if isinstance(self.inner, fields.Nested) else None
        if schema is None or _has_dump_hooks(schema):
            return None
        dump = schema.dump_fields
        if not all(f._CHECK_ATTRIBUTE and f.dump_default is ma.missing and "." not in (f.attribute or n)
                   for n, f in dump.items()):
            return None
        return [(f.data_key or n, f.attribute or n, f._serialize) for n, f in dump.items()]


def _has_dump_hooks(schema: ma.Schema) -> bool:
    # marshmallow keys its hooks by tag, or by (tag, many) in older releases.
    tags = {key[0] if isinstance(key, tuple) else key for key, names in schema._hooks.items() if names}
    return any(str(tag).endswith("dump") for tag in tags)


def page_schema(item_schema: type[ma.Schema], name: str | None = None) -> type[ma.Schema]:
    """A response schema {items, total, page, page_size, links} for a list of item_schema."""
    attrs = {
        "items": Items(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "page_size": fields.Integer(required=True),
        "links": fields.Nested(LinksSchema, required=True),
    }
    cls_name = name or item_schema.__name__.replace("Schema", "") + "PageSchema"
    return type(cls_name, (ma.Schema,), attrs)


class ListArgsSchema(ma.Schema):
    """page, page_size (bounded by PAGE_SIZE_MAX) and sort; subclasses add filters and SORT_FIELDS."""

    SORT_FIELDS: tuple[str, ...] = ("created_at",)
    DEFAULT_SORT: str = "-created_at"

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=None, validate=validate.Range(min=1))
    sort = fields.String(load_default=None)

    @ma.validates("page_size")
    def _check_page_size(self, value, **_kwargs):
        limit = get_settings().page_size_max
        if value is not None and value > limit:
            raise ma.ValidationError(f"Must be at most {limit}.")

    @ma.validates("sort")
    def _check_sort(self, value, **_kwargs):
        if value is not None and value.lstrip("-") not in self.SORT_FIELDS:
            raise ma.ValidationError(f"Must be one of {', '.join(self.SORT_FIELDS)} (prefix - for descending).")

    @ma.post_load
    def _defaults(self, data, **_kwargs):
        data["page_size"] = data.get("page_size") or get_settings().page_size_default
        data["sort"] = data.get("sort") or self.DEFAULT_SORT
        return data


def list_args(name: str, sort_fields: tuple[str, ...], default_sort: str, /,
              **filters: fields.Field) -> type[ma.Schema]:
    """A ListArgsSchema subclass with the given sort whitelist and filter fields (a filter may be called name)."""
    attrs = {"SORT_FIELDS": sort_fields, "DEFAULT_SORT": default_sort, **filters}
    sort_doc = ", ".join(f"{f}, -{f}" for f in sort_fields)
    attrs["sort"] = fields.String(load_default=None, metadata={"description": f"One of: {sort_doc}"})
    return type(name, (ListArgsSchema,), attrs)
