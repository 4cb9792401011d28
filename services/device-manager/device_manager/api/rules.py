"""Rules at /api/v1/rules: everyone reads, operators write; every change tells the rule engines to reload."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.rules import (
    RuleCreateSchema,
    RuleListArgs,
    RulePageSchema,
    RuleSchema,
    RuleUpdateSchema,
)
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
        return page_response(services().rules.list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(RuleCreateSchema)
    @blp.response(201, RuleSchema)
    def post(self, body):
        """Create a threshold rule."""
        return services().rules.create(body, current_actor())


@blp.route("/<uuid:rule_id>")
class RuleItem(MethodView):
    """One rule."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.response(200, RuleSchema)
    def get(self, rule_id):
        """Read a rule."""
        return services().rules.get(rule_id)

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.arguments(RuleUpdateSchema)
    @blp.response(200, RuleSchema)
    def patch(self, body, rule_id):
        """Change a rule; built-in kinds accept only their tunables (422 for other fields)."""
        return services().rules.update(rule_id, body)

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Rule not found"))
    @blp.response(204)
    def delete(self, rule_id):
        """Delete a threshold rule (409 for built-in kinds: disable them instead)."""
        services().rules.delete(rule_id)
