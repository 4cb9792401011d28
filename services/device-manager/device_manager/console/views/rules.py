"""Rules: list, create, edit, enable/disable, and try a threshold rule on recent data."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, is_htmx, requires
from device_manager.schemas.rules import OPERATORS, SCOPES, SEVERITIES, RuleListArgs
from device_manager.service.roles import Role

bp = Blueprint("rules", __name__)
FIELDS = ("name", "description", "scope", "device_id", "device_type", "metric", "operator", "threshold", "severity",
          "message_template", "for_seconds", "clear_hysteresis", "renotify_seconds", "cooldown_seconds")
CHOICES = {"operators": OPERATORS, "scopes": SCOPES, "severities": SEVERITIES}


@bp.route("/rules")
@requires(Role.VIEWER)
def index():
    """A page of rules."""
    args = forms.query(RuleListArgs)
    args.setdefault("page_size", 50)
    req = data.page_request(RuleListArgs, args)
    page = data.rules(req)
    return render_template("console/rules.html", page=page, pg=forms.pages(page, req), args=args)


@bp.route("/rules/new")
@requires(Role.OPERATOR)
def new():
    """The form for a new threshold rule."""
    return render_template("console/rule_form.html", r=None, **CHOICES)


@bp.route("/rules", methods=["POST"])
@requires(Role.OPERATOR)
def create():
    """Create a threshold rule."""
    created = data.create_rule(_values(), actor())
    return _to_rule(created, "Rule created")


@bp.route("/rules/<uuid:rule_id>")
@requires(Role.VIEWER)
def show(rule_id):
    """A rule, editable by operators."""
    return render_template("console/rule_form.html", r=data.rule(rule_id), **CHOICES)


@bp.route("/rules/<uuid:rule_id>", methods=["POST"])
@requires(Role.OPERATOR)
def update(rule_id):
    """Change a threshold rule."""
    return _to_rule(data.update_rule(rule_id, _values()), "Rule saved")


@bp.route("/rules/<uuid:rule_id>/enabled", methods=["POST"])
@requires(Role.OPERATOR)
def set_enabled(rule_id):
    """Enable or disable any rule, built-in ones included."""
    changed = data.set_rule_enabled(rule_id, forms.checked("enabled"))
    return forms.done(f"Rule {'enabled' if changed['enabled'] else 'disabled'}", "console/_rule_row.html", r=changed)


@bp.route("/rules/<uuid:rule_id>/test")
@requires(Role.VIEWER)
def test(rule_id):
    """What the rule would have done over the last hour."""
    return render_template("console/_rule_test.html", t=data.test_rule(rule_id))


def _values() -> dict:
    values = forms.fields(*FIELDS)
    scope = values.get("scope", "all")
    for name, needed in (("device_id", "device"), ("device_type", "device_type")):
        if scope != needed:
            values[name] = None
    values["enabled"] = forms.checked("enabled")
    return values


def _to_rule(rule: dict, message: str):
    target = url_for("console.rules.show", rule_id=rule["id"])
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return forms.done(message)
