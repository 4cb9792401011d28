"""Blueprint registry: one module per resource, each exposing `blp`; append new modules to BLUEPRINTS."""

from __future__ import annotations

import importlib

from flask_smorest import Api

from device_manager.api import smorest  # noqa: F401  (sets the strict parser before any blueprint is imported)

BLUEPRINTS = [
    "device_manager.auth.routes",
    "device_manager.api.users",
    "device_manager.api.device_types",
    "device_manager.api.devices",
    "device_manager.api.configs",
    "device_manager.api.commands",
    "device_manager.api.ota",
    "device_manager.api.credentials",  # device broker credentials (issue 12)
    "device_manager.api.pki",  # the device CA's CRL, public (brokers pull it)
    "device_manager.api.firmware",
    "device_manager.api.command_keys",
    # operations (rules, events, notifications, telemetry, archive, raw, dead letters, stats)
    "device_manager.api.rules",
    "device_manager.api.events",
    "device_manager.api.subscriptions",
    "device_manager.api.notifications",
    "device_manager.api.telemetry",
    "device_manager.api.archive",
    "device_manager.api.raw",
    "device_manager.api.dead_letters",
    "device_manager.api.stats",
    # metering (issue 13)
    "device_manager.api.energy",
    "device_manager.api.exports",
]


def register(api: Api) -> None:
    """Import every module in BLUEPRINTS and register its `blp` with the smorest Api."""
    for name in BLUEPRINTS:
        api.register_blueprint(importlib.import_module(name).blp)
