"""Device type use cases: create, read, change and delete (a type in use cannot be deleted)."""

from __future__ import annotations

from typing import Any, Protocol

from device_manager.service.errors import NotFound
from device_manager.service.pagination import Page, PageRequest


class DeviceTypeStore(Protocol):
    """Where device types live."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, type_id) -> dict[str, Any] | None:
        """One type."""

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Insert a type."""

    def update(self, type_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when absent."""

    def delete(self, type_id) -> bool:
        """Delete; False when absent (a type still used is a conflict from the store)."""


class DeviceTypeService:
    """Device types, addressed by their UUID."""

    def __init__(self, types: DeviceTypeStore):
        self.types = types

    def list(self, req: PageRequest) -> Page:
        """A page of device types."""
        return self.types.list(req)

    def get(self, type_id) -> dict[str, Any]:
        """One type; NotFound when unknown."""
        return _found(self.types.get(type_id))

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a device type."""
        return self.types.create(data)

    def update(self, type_id, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a device type."""
        return _found(self.types.update(type_id, changes))

    def delete(self, type_id) -> None:
        """Delete a device type no device uses."""
        if not self.types.delete(type_id):
            raise NotFound("Device type not found")


def _found(row):
    if row is None:
        raise NotFound("Device type not found")
    return row
