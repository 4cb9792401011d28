"""The console's one door to the domain: the use-case services the JSON API calls too (device_manager.wiring).

Inputs are checked with the JSON API's own schemas first, so both transports accept exactly the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma

from device_manager.extensions import services
from device_manager.schemas import commands as command_schemas
from device_manager.schemas import ota as ota_schemas
from device_manager.schemas import rules as rule_schemas
from device_manager.schemas import subscriptions as subscription_schemas
from device_manager.schemas import users as user_schemas
from device_manager.service import rule_test
from device_manager.service.errors import Conflict, Invalid
from device_manager.service.pagination import Page, PageRequest


def load(schema: type[ma.Schema], values: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Values checked by an API schema; a failure is the domain's Invalid with the schema's field errors."""
    try:
        return schema().load(values, partial=partial)
    except ma.ValidationError as exc:
        raise Invalid("Please correct the marked fields", {"json": exc.messages}) from None


def page_request(schema: type[ma.Schema], values: dict[str, Any]) -> PageRequest:
    """A PageRequest from query values checked by the API's list schema."""
    return PageRequest.from_args(load(schema, values))


# sign-in and sessions
def sign_in(email: str, password: str) -> dict | None:
    """The active user with this email and password, else None (the check POST /auth/login makes)."""
    return services().users.authenticate(email, password)


def session_valid(session_id: str, user_id: str, role: str, password_version: int) -> bool:
    """One query per request, as for a JWT: the session is not signed out, the user exists, is active and still
    has the role and the password it signed in with."""
    return services().users.token_usable(session_id, user_id, role, password_version)


def end_session(session_id: str, expires_at: datetime) -> None:
    """Revoke a console session id until it would have expired anyway."""
    services().users.revoke_token(session_id, expires_at)


def users(req: PageRequest) -> Page:
    return services().users.list(req)


def create_user(values: dict) -> dict:
    body = load(user_schemas.UserCreateSchema, values)
    return services().users.create(body["email"], body["password"], body["role"], body["is_active"])


def update_user(user_id: str, values: dict) -> dict:
    return services().users.update(user_id, load(user_schemas.UserUpdateSchema, values))


# fleet and readings
def fleet_summary() -> dict:
    """Devices by connection, open events by severity, ingest rate, dead letters by status (GET /stats)."""
    return services().stats.summary(300)


def devices(req: PageRequest) -> Page:
    return services().devices.list(req)


def device(device_pk: str) -> dict:
    return services().devices.get(device_pk)


def device_type_names() -> list[str]:
    """The names of the device types (a fleet has a handful), for filters."""
    req = PageRequest(page=1, page_size=500, sort="name")
    return [t["name"] for t in services().device_types.list(req).items]


def device_config(device_pk: str) -> dict | None:
    return services().commands.config(device_pk)


def latest(device_pk: str) -> list[dict]:
    """Newest value of each metric of a device: [{metric, unit, ts, value}]."""
    return services().readings.latest(device_pk)["metrics"]


def series(device_pk: str, metric: str, start, end, every, agg: str | None) -> dict | None:
    """One metric over [start, end) in buckets of `every` (whole minutes read the 1-minute rollup):
    {metric, unit, points: [{ts, value}]}, None when there is no point."""
    found = services().readings.telemetry(device_pk, start=start, end=end, metrics=(metric,), every=every, agg=agg)
    return found["series"][0] if found["series"] else None


# commands and OTA
def commands(req: PageRequest) -> Page:
    return services().commands.list(req)


def device_commands(device_pk: str, limit: int) -> list[dict]:
    """A device's newest commands."""
    req = PageRequest(page=1, page_size=limit, sort="-created_at")
    return services().commands.list_for_device(device_pk, req).items


def command(cmd_id: str) -> dict:
    return services().commands.get(cmd_id)


def send_command(device_pk: str, values: dict, actor: str) -> dict:
    body = load(command_schemas.CommandCreateSchema, values)
    return services().commands.send(device_pk, body["cmd"], body["params"], body["expires_in_s"], actor)


def send_bulk(values: dict, actor: str) -> dict:
    return services().commands.send_bulk(load(command_schemas.BulkCommandSchema, values), actor)


def rollouts(req: PageRequest) -> Page:
    return services().commands.rollouts_page(req)


def rollout(rollout_id: str) -> dict:
    return services().commands.rollout(rollout_id)


def rollout_states(rollout_id: str, req: PageRequest) -> Page:
    return services().commands.rollout_states(rollout_id, req)


def start_rollout(values: dict, actor: str) -> dict:
    return services().commands.start_rollout(load(ota_schemas.RolloutCreateSchema, values), actor)


# events, rules, notifications, dead letters
def events(req: PageRequest) -> Page:
    return services().events.list(req)


def event_transition(event_id: str, target: str, actor: str, comment: str | None = None) -> dict:
    """Acknowledge or resolve an event; Conflict when its state does not allow it."""
    if target == "acknowledged":
        return services().events.acknowledge(event_id, actor)
    return services().events.resolve(event_id, actor, comment)


def rules(req: PageRequest) -> Page:
    return services().rules.list(req)


def rule(rule_id: str) -> dict:
    return services().rules.get(rule_id)


def create_rule(values: dict, actor: str) -> dict:
    return services().rules.create(load(rule_schemas.RuleCreateSchema, values), actor)


def set_rule_enabled(rule_id: str, enabled: bool) -> dict:
    return services().rules.update(rule_id, {"enabled": enabled})


def update_rule(rule_id: str, values: dict) -> dict:
    if rule(rule_id)["builtin"]:
        raise Conflict("Built-in rules are tuned through the API; here they can only be enabled or disabled")
    return services().rules.update(rule_id, load(rule_schemas.RuleUpdateSchema, values, partial=True))


def test_rule(rule_id: str, hours: int = 1, devices_max: int = 10) -> dict:
    """A threshold rule tried on the last hours of raw points of the devices it covers (at most devices_max,
    the most recently seen)."""
    found = rule(rule_id)
    if found["kind"] != "threshold":
        raise Conflict("Only threshold rules can be tried on recent data")
    filters = {"device_id": found["device_id"]} if found["scope"] == "device" else \
        {"device_type": found["device_type"]} if found["scope"] == "device_type" else {}
    targets = devices(PageRequest(page=1, page_size=devices_max, sort="-last_seen", filters=filters)).items
    end = datetime.now(UTC)
    outcomes = []
    for target in targets:
        got = series(target["id"], found["metric"], end - timedelta(hours=hours), end, None, None)
        points = [(p["ts"], p["value"]) for p in (got["points"] if got else [])]
        outcomes.append(rule_test.evaluate(target["device_id"], points, found["operator"], found["threshold"],
                                           found["for_seconds"]))
    return {"rule": found, "hours": hours, "outcomes": outcomes}


def subscriptions(req: PageRequest) -> Page:
    return services().notifications.subscriptions_page(req)


def create_subscription(values: dict, actor: str) -> dict:
    body = load(subscription_schemas.SubscriptionCreateSchema, values)
    return services().notifications.subscribe(body, actor)


def set_subscription_enabled(sub_id: str, enabled: bool) -> dict:
    return services().notifications.update_subscription(sub_id, {"enabled": enabled})


def notifications(req: PageRequest) -> Page:
    return services().notifications.notifications_page(req)


def notification(notification_id: str) -> dict:
    return services().notifications.notification(notification_id)


def dead_letters(req: PageRequest) -> Page:
    return services().dead_letters.list(req)


def handle_dead_letter(dl_id: str, action: str, actor: str) -> dict:
    """Replay (republish to its exchange) or discard a parked dead letter."""
    letters = services().dead_letters
    return letters.replay(dl_id, actor) if action == "replay" else letters.discard(dl_id, actor)
