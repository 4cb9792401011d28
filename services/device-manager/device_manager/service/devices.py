"""Device use cases: register (one or in bulk), read, change, delete, and issue or revoke HTTP ingest tokens."""

from __future__ import annotations

from typing import Any, Protocol

from device_manager.service.errors import Invalid, NotFound
from device_manager.service.ingest import new_ingest_token
from device_manager.service.pagination import Page, PageRequest
from iothub.broker_acl import SERVICE_PREFIX, is_service_account

RESERVED = f"device_ids starting with {SERVICE_PREFIX!r} are reserved for the broker's service accounts"


class DeviceStore(Protocol):
    """Where devices live."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, row_id) -> dict[str, Any] | None:
        """One device by its UUID."""

    def create_many(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert all or none; returned in input order."""

    def update(self, row_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when absent."""

    def delete(self, row_id) -> bool:
        """Delete; False when absent."""

    def set_ingest_token_hash(self, row_id, token_hash: str | None) -> str | None:
        """Store or clear the token hash; the device_id, None when absent."""


class KeyIssuer(Protocol):
    """Gives newly registered devices their command-signing keys (service.command_keys.CommandKeyService)."""

    def issue(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The devices with `command_key` added."""


class DeviceService:
    """Devices, addressed by their UUID."""

    def __init__(self, devices: DeviceStore, bulk_max: int, keys: KeyIssuer | None = None):
        self.devices = devices
        self.bulk_max = bulk_max
        self.keys = keys

    def list(self, req: PageRequest) -> Page:
        """A page of devices."""
        return self.devices.list(req)

    def get(self, device_id) -> dict[str, Any]:
        """One device; NotFound when unknown."""
        return _found(self.devices.get(device_id))

    def text_id(self, device_id) -> str:
        """The device's text id (the one in telemetry and the archive) for its UUID; NotFound when unknown."""
        return self.get(device_id)["device_id"]

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register one device (with its command key, when keys are issued)."""
        if is_service_account(data["device_id"]):
            raise Invalid(RESERVED, {"json": {"device_id": [RESERVED]}})
        return self._provisioned(self.devices.create_many([data]))[0]

    def create_many(self, devices: list[dict[str, Any]]) -> dict[str, Any]:
        """Register up to bulk_max devices, all or none: {count, items}."""
        if len(devices) > self.bulk_max:
            raise Invalid(f"At most {self.bulk_max} devices per request",
                          {"json": {"devices": [f"Longer than {self.bulk_max}."]}})
        reserved = {i: {"device_id": [RESERVED]} for i, d in enumerate(devices) if is_service_account(d["device_id"])}
        if reserved:
            raise Invalid(RESERVED, {"json": {"devices": reserved}})
        items = self._provisioned(self.devices.create_many(devices))
        return {"count": len(items), "items": items}

    def _provisioned(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.keys.issue(items) if self.keys is not None else items

    def update(self, device_id, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a device (not its device_id)."""
        return _found(self.devices.update(device_id, changes))

    def delete(self, device_id) -> None:
        """Delete a device with its config, commands and OTA states."""
        if not self.devices.delete(device_id):
            raise NotFound("Device not found")

    def issue_ingest_token(self, device_id) -> dict[str, str]:
        """A new HTTP ingest token replacing any previous one: {device_id, token}; the token is not stored."""
        token, digest = new_ingest_token()
        mqtt_id = self.devices.set_ingest_token_hash(device_id, digest)
        if mqtt_id is None:
            raise NotFound("Device not found")
        return {"device_id": mqtt_id, "token": token}

    def revoke_ingest_token(self, device_id) -> None:
        """Remove the device's HTTP ingest token."""
        if self.devices.set_ingest_token_hash(device_id, None) is None:
            raise NotFound("Device not found")


def _found(row):
    if row is None:
        raise NotFound("Device not found")
    return row
