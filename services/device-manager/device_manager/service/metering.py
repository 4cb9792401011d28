"""Metering use cases: energy reports and registers from the collector's buckets, and streamed data exports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from device_manager.service import energy
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.readings import DeviceIds

TELEMETRY_EXPORT_RANGE = timedelta(days=31)
ENERGY_EXPORT_RANGE = timedelta(days=366)


class EnergyStore(Protocol):
    """Energy buckets."""

    def periods(self, device_ids: Sequence[str] | None, device_type: str | None, start: datetime, end: datetime,
                resolution: str) -> dict[datetime, energy.Sums]:
        """Sums per period start."""

    def register(self, device_id: str, at: datetime) -> tuple[energy.Sums, datetime | None]:
        """Sums up to `at` and the time of the last sample then."""

    def device_count(self, device_type: str | None) -> int:
        """Devices registered now (of the type)."""

    def type_exists(self, name: str) -> bool:
        """True when the device type exists."""


class ExportStore(Protocol):
    """Row batches for exports."""

    def devices_of_type(self, name: str) -> list[str] | None:
        """Text ids of a type's devices; None when no such type."""

    def telemetry(self, device_ids: Sequence[str], start: datetime, end: datetime,
                  metrics: Sequence[str] = ()) -> Iterator[list[tuple]]:
        """Readings in [start, end)."""

    def energy(self, device_ids: Sequence[str], start: datetime, end: datetime) -> Iterator[list[tuple]]:
        """Energy buckets in [start, end)."""


class MeteringService:
    """Energy and exports."""

    def __init__(self, devices: DeviceIds, energy_store: EnergyStore, exports: ExportStore):
        self.devices = devices
        self.energy = energy_store
        self.exports = exports

    def device_energy(self, device_id, start, end, resolution: str, unit: str) -> dict[str, Any]:
        """One device's energy per period of [start, end) with coverage."""
        text_id = self.devices.text_id(device_id)
        return {"device_id": text_id, **self._report(start, end, resolution, unit, [text_id], None, 1)}

    def device_register(self, device_id, at: datetime | None, unit: str) -> dict[str, Any]:
        """A device's cumulative registers up to `at` (default now)."""
        text_id = self.devices.text_id(device_id)
        at = at or datetime.now(UTC)
        sums, as_of = self.energy.register(text_id, at)
        return {"device_id": text_id, "at": at, "as_of": as_of, **energy.register(sums, unit)}

    def fleet_energy(self, device_type: str | None, start, end, resolution: str, unit: str) -> dict[str, Any]:
        """Energy of every device, or of one device type's devices."""
        if device_type is not None and not self.energy.type_exists(device_type):
            raise NotFound("Device type not found")
        devices = self.energy.device_count(device_type)
        return {"device_type": device_type, **self._report(start, end, resolution, unit, None, device_type, devices)}

    def _report(self, start, end, resolution, unit, device_ids, device_type, devices) -> dict[str, Any]:
        try:
            start, end = energy.bounds(start, end, resolution)
        except energy.EnergyQueryError as exc:
            raise Invalid(exc.message, {"query": {exc.field: [exc.message]}}) from None
        sums = self.energy.periods(device_ids, device_type, start, end, resolution)
        return energy.report(sums, start, end, resolution, unit, devices)

    def export_telemetry(self, args: dict[str, Any]) -> tuple[str, Iterator[list[tuple]]]:
        """(file name stem, row batches) of readings for a device_id or a device_type."""
        devices, stem, start, end = self._scope(args, TELEMETRY_EXPORT_RANGE)
        return stem, self.exports.telemetry(devices, start, end, tuple(args.get("metric") or ()))

    def export_energy(self, args: dict[str, Any]) -> tuple[str, Iterator[list[tuple]]]:
        """(file name stem, row batches) of energy buckets for a device_id or a device_type."""
        devices, stem, start, end = self._scope(args, ENERGY_EXPORT_RANGE)
        return stem, self.exports.energy(devices, start, end)

    def _scope(self, args, max_range: timedelta) -> tuple[list[str], str, datetime, datetime]:
        """Devices, a file name stem and the validated range of an export request."""
        if ("device_id" in args) == ("device_type" in args):
            raise Invalid("Give exactly one of device_id or device_type", {"query": {"device_id": ["one of two"]}})
        end = args.get("end") or datetime.now(UTC)
        start = args.get("start") or end - timedelta(days=1)
        if start >= end or end - start > max_range:
            raise Invalid(f"start must be before end, at most {max_range.days} days", {"query": {"end": ["range"]}})
        if "device_id" in args:
            text_id = self.devices.text_id(args["device_id"])
            return [text_id], text_id, start, end
        devices = self.exports.devices_of_type(args["device_type"])
        if devices is None:
            raise NotFound("Device type not found")
        return devices, args["device_type"], start, end
