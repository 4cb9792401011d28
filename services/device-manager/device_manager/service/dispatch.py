"""Command use cases: send one command or one to many devices, start OTA rollouts, change desired configs.

Every path stores the command first, then publishes it (QoS 2 by default) and marks what the broker took as sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from device_manager.service import commands as rules
from device_manager.service import configs as config_rules
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.ota import summarise
from device_manager.service.pagination import Page, PageRequest

CONFIG_COMMAND_EXPIRY_S = 3600
Clock = Callable[[], datetime]


class CommandStore(rules.SentMarker, Protocol):
    """Where commands live."""

    def create(self, row: dict[str, Any]) -> None:
        """Insert one command."""

    def create_for_devices(self, filters: dict[str, Any], cmd: str, params: dict[str, Any], *, bulk_id: str,
                           created_by: str, expires_at: datetime) -> list[tuple[str, str]]:
        """One command per matching device: (cmd_id, device_id) pairs."""

    def get(self, cmd_id) -> dict[str, Any] | None:
        """One command."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def device_identity(self, device_uuid) -> str | None:
        """The device's MQTT id, None when the device does not exist."""


class FirmwareSource(Protocol):
    """Resolves an uploaded image for a rollout (service.firmware.FirmwareService)."""

    def rollout_source(self, firmware_id) -> dict[str, Any]:
        """{firmware_id, fw_version, url (pre-signed), sha256, size_bytes}; Invalid when unknown."""


class RolloutStore(Protocol):
    """Where OTA rollouts and their per-device states live."""

    def create(self, rollout: dict[str, Any], params: dict[str, Any], filters: dict[str, Any], actor: str,
               expires_at: datetime) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The rollout, its commands and states at once: (rollout, [(cmd_id, device_id)])."""

    def get(self, rollout_id) -> dict[str, Any] | None:
        """One rollout with counts and progress."""

    def list(self, req: PageRequest) -> Page:
        """A page of rollouts."""

    def states(self, rollout_id, req: PageRequest) -> Page:
        """A page of per-device states."""

    def exists(self, rollout_id) -> bool:
        """True when the rollout exists."""


class ConfigStore(Protocol):
    """Where desired and reported configs live."""

    def get(self, device_uuid) -> dict[str, Any] | None:
        """The config joined with the device; None when no device."""

    def set_desired(self, device_uuid, desired: dict[str, Any], actor: str,
                    decide: Callable[[dict | None, int], int | None],
                    command: Callable[[str, int], dict[str, Any]]) -> tuple[str, dict | None] | None:
        """Store a new desired version and its command atomically."""

    def history(self, device_uuid, req: PageRequest) -> Page:
        """Accepted config changes."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _device_filters(body: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    filters = {k: body[k] for k in keys if k in body}
    if "device_ids" in body:
        filters["ids"] = body["device_ids"]
    return filters


def checked(cmd: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params to store and send; Invalid (field errors under json) when the command cannot work."""
    try:
        return rules.check(cmd, params)
    except rules.CommandError as exc:
        raise Invalid(str(exc), {"json": exc.field_errors}) from exc


class CommandService:
    """Commands to devices, their OTA rollouts and desired configs."""

    def __init__(self, commands: CommandStore, rollouts: RolloutStore, configs: ConfigStore,
                 publisher: rules.Publisher, clock: Clock = _utcnow, firmware: FirmwareSource | None = None):
        self.commands = commands
        self.rollouts = rollouts
        self.configs = configs
        self.publisher = publisher  # service.signing.SignedPublisher in the app: every command leaves signed
        self.clock = clock
        self.firmware = firmware

    def send(self, device_id, cmd: str, params: dict[str, Any], expires_in_s: int, actor: str) -> dict[str, Any]:
        """Store a command for one device, publish it, and return its row (sent once the broker has it)."""
        params = checked(cmd, params)
        mqtt_id = self._identity(device_id)
        cmd_id = rules.new_cmd_id()
        expires_at = rules.expiry(expires_in_s, self.clock())
        self.commands.create({"cmd_id": cmd_id, "device_uuid": device_id, "cmd": cmd, "params": params,
                              "created_by": actor, "expires_at": expires_at})
        rules.dispatch(self.publisher, self.commands,
                       [rules.Outgoing(mqtt_id, cmd_id, cmd, params, expires_at=expires_at)])
        return self.commands.get(cmd_id)

    def send_bulk(self, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """One command to every device matching the selectors: {bulk_id, count, sent}."""
        cmd = body["cmd"]
        params = checked(cmd, body["params"])
        filters = _device_filters(body, ("device_type", "device_type_id", "status", "connection_status"))
        bulk_id = rules.new_cmd_id()
        expires_at = rules.expiry(body["expires_in_s"], self.clock())
        created = self.commands.create_for_devices(filters, cmd, params, bulk_id=bulk_id, created_by=actor,
                                                   expires_at=expires_at)
        outgoing = [rules.Outgoing(mqtt_id, cmd_id, cmd, params, expires_at=expires_at) for cmd_id, mqtt_id in created]
        sent = rules.dispatch(self.publisher, self.commands, outgoing)
        return {"bulk_id": bulk_id, "count": len(created), "sent": len(sent)}

    def list(self, req: PageRequest) -> Page:
        """A page of commands."""
        return self.commands.list(req)

    def list_for_device(self, device_id, req: PageRequest) -> Page:
        """A page of one device's commands."""
        self._identity(device_id)
        return self.commands.list(PageRequest(req.page, req.page_size, req.sort,
                                              {**req.filters, "device_uuid": device_id}))

    def get(self, cmd_id) -> dict[str, Any]:
        """One command and its state."""
        row = self.commands.get(cmd_id)
        if row is None:
            raise NotFound("Command not found")
        return row

    def start_rollout(self, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """Create a rollout with one start_ota per target device, publish them: the rollout with sent. An uploaded
        firmware_id sends its pre-signed URL (it expires) and the server-computed sha256 and size."""
        if "firmware_id" in body:
            if self.firmware is None:
                raise Invalid("Firmware uploads are not configured", {"json": {"firmware_id": ["Not available."]}})
            source = self.firmware.rollout_source(body["firmware_id"])
            body = {**body, **source, "fw_version": body.get("fw_version") or source["fw_version"]}
        filters = _device_filters(body, ("device_type", "device_type_id", "status"))
        params = rules.ota_params(body["fw_version"], body["url"], body["sha256"], body["size_bytes"])
        expires_at = rules.expiry(body["expires_in_s"], self.clock())
        rollout, targets = self.rollouts.create(body, params, filters, actor, expires_at)
        outgoing = [rules.Outgoing(mqtt_id, cmd_id, "start_ota", params, expires_at=expires_at)
                    for cmd_id, mqtt_id in targets]
        sent = rules.dispatch(self.publisher, self.commands, outgoing)
        return {**with_summary(rollout), "sent": len(sent)}

    def rollouts_page(self, req: PageRequest) -> Page:
        """A page of rollouts with their summaries."""
        page = self.rollouts.list(req)
        return Page([with_summary(r) for r in page.items], page.total)

    def rollout(self, rollout_id) -> dict[str, Any]:
        """One rollout with its summary."""
        rollout = self.rollouts.get(rollout_id)
        if rollout is None:
            raise NotFound("Rollout not found")
        return with_summary(rollout)

    def rollout_states(self, rollout_id, req: PageRequest) -> Page:
        """Per-device progress of a rollout."""
        if not self.rollouts.exists(rollout_id):
            raise NotFound("Rollout not found")
        return self.rollouts.states(rollout_id, req)

    def config(self, device_id) -> dict[str, Any]:
        """Desired (with version) and reported config, in_sync, and command None."""
        return _config_view(self.configs.get(device_id))

    def set_config(self, device_id, desired: dict[str, Any], actor: str) -> dict[str, Any]:
        """Replace the desired config; a change bumps the version and sends update_config (its row in command)."""
        expires_at = rules.expiry(CONFIG_COMMAND_EXPIRY_S, self.clock())

        def command(_mqtt_id: str, _version: int) -> dict:
            return {"cmd_id": rules.new_cmd_id(), "device_uuid": device_id, "cmd": "update_config",
                    "params": config_rules.command_params(desired), "created_by": actor, "expires_at": expires_at}

        result = self.configs.set_desired(
            device_id, desired, actor, lambda current, version: config_rules.next_version(current, version, desired),
            command)
        if result is None:
            raise NotFound("Device not found")
        mqtt_id, row = result
        view = self.config(device_id)
        if row is not None:
            outgoing = rules.Outgoing(mqtt_id, row["cmd_id"], row["cmd"], row["params"], expires_at=expires_at)
            rules.dispatch(self.publisher, self.commands, [outgoing])
            view["command"] = self.commands.get(row["cmd_id"])
        return view

    def config_history(self, device_id, req: PageRequest) -> Page:
        """The configuration changes the device accepted."""
        self._identity(device_id)
        return self.configs.history(device_id, req)

    def _identity(self, device_id) -> str:
        mqtt_id = self.commands.device_identity(device_id)
        if mqtt_id is None:
            raise NotFound("Device not found")
        return mqtt_id


def with_summary(rollout: dict[str, Any]) -> dict[str, Any]:
    """A rollout as shown: its counts and progress folded into a summary."""
    view = {k: v for k, v in rollout.items() if k not in ("counts", "progress")}
    view["summary"] = summarise(rollout.get("counts", {}), rollout.get("progress", []))
    return view


def _config_view(row):
    if row is None:
        raise NotFound("Device not found")
    view = dict(row)
    view["desired"] = view["desired"] or {}
    view["version"] = view["version"] or 0
    view["in_sync"] = config_rules.in_sync(view["desired"], view["version"], view["reported"],
                                           view["reported_version"])
    view["command"] = None
    return view
