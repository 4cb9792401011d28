"""Composition of the energy writer from settings (kept apart from runner.py, which is being reworked)."""

from __future__ import annotations

from collector.settings import Settings
from collector.writers.energy import EnergyWriter
from collector.writers.energy_postgres import PostgresEnergyStore
from iothub.db import Database
from iothub.settings import SettingsError


def build_energy_writer(settings: Settings, db: Database) -> EnergyWriter:
    """The energy writer on PostgreSQL; SettingsError when the gap rule cannot fit the buckets."""
    try:
        return EnergyWriter(PostgresEnergyStore(db, bucket_s=settings.metering_bucket_s),
                            bucket_s=settings.metering_bucket_s, max_gap=settings.metering_max_gap_s)
    except ValueError as exc:
        raise SettingsError(f"METERING_*: {exc}") from None
