"""Rules at /api/v1/rules: everyone reads, operators write; every change tells the rule engines to reload."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.backends import notify_rules_changed
from device_manager.extensions import get_db
from device_manager.repositories.rules import BUILTIN_FIELDS, RuleRepository
from device_manager.schemas.rules import (
    RuleCreateSchema,
    RuleListArgs,
    RulePageSchema,
    RuleSchema,
    RuleUpdateSchema,
    check_scope,
)
from device_manager.service.errors import Conflict, Invalid, NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("rules", __name__, url_prefix="/api/v1/rules",
                description="Alert rules: threshold rules and the built-in kinds (seq_gap, offline, ota_failed, "
                            "command_timeout, redundancy)")


@blp.route("")
class Rules(MethodView):
    """The rule collection."""

    @requires(Role.VIEWER)
    @blp.arguments(RuleListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, RulePageSchema)
    def get(self, args):
        """List rules (filter kind, scope, severity, enabled, builtin, metric, device_id, device_type, q)."""
        req = PageRequest.from_args(args)
        return page_response(RuleRepository(get_db()).list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(RuleCreateSchema)
    @blp.response(201, RuleSchema)
    def post(self, body):
        """Create a threshold rule."""
        rule = RuleRepository(get_db()).create(body, current_actor())
        notify_rules_changed(rule["id"], "created")
        return rule


@blp.route("/<uuid:rule_id>")
class RuleItem(MethodView):
    """One rule."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.response(200, RuleSchema)
    def get(self, rule_id):
        """Read a rule."""
        return _found(RuleRepository(get_db()).get(rule_id))

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.arguments(RuleUpdateSchema)
    @blp.response(200, RuleSchema)
    def patch(self, body, rule_id):
        """Change a rule; built-in kinds accept only their tunables (422 for other fields)."""
        repo = RuleRepository(get_db())
        rule = _found(repo.get(rule_id))
        if rule["builtin"]:
            fixed = sorted(set(body) - set(BUILTIN_FIELDS))
            if fixed:
                raise Invalid("Built-in rules only accept " + ", ".join(BUILTIN_FIELDS),
                              {"json": {name: ["Not editable on a built-in rule."] for name in fixed}})
            _check_params(rule["kind"], body.get("params"))
        else:
            body = _rescope(rule, body)
        updated = _found(repo.update(rule_id, body))
        notify_rules_changed(rule_id, "updated")
        return updated

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.response(204)
    def delete(self, rule_id):
        """Delete a threshold rule (409 for built-in kinds: disable them instead)."""
        kind = RuleRepository(get_db()).delete(rule_id)
        if kind is None:
            raise NotFound("Rule not found")
        if kind != "threshold":
            raise Conflict("Built-in rules cannot be deleted; set enabled to false instead", {"kind": kind})
        notify_rules_changed(rule_id, "deleted")


def _check_params(kind: str, params: dict | None) -> None:
    """The knobs the rule engine reads must have the type it expects (offline: factor, a multiple of the
    device's send/hello interval)."""
    if params is None or kind != "offline":
        return
    factor = params.get("factor", 2)
    unknown = sorted(set(params) - {"factor"})
    if unknown or isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 1000:
        raise Invalid("Request validation failed",
                      {"json": {"params": ["offline takes only factor, a number from 1 to 1000."]}})


def _rescope(rule: dict, body: dict) -> dict:
    """Clear the ids a new scope does not use, then check the merged rule is consistent."""
    body = dict(body)
    scope = body.get("scope", rule["scope"])
    if scope != "device" and "device_id" not in body:
        body["device_id"] = None
    if scope != "device_type" and "device_type" not in body:
        body["device_type"] = None
    try:
        check_scope({**rule, **body})
    except ma.ValidationError as exc:
        raise Invalid("Request validation failed", {"json": exc.messages}) from None
    return body


def _found(rule):
    if rule is None:
        raise NotFound("Rule not found")
    return rule
