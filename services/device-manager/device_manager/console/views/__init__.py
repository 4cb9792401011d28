"""Console pages, one blueprint per resource, nested under the console's parent blueprint."""

from __future__ import annotations

import importlib

from flask import Blueprint

PAGES = ["session", "overview", "devices", "device", "events", "commands", "ota", "rules", "notifications",
         "dead_letters", "users"]


def register(parent: Blueprint) -> None:
    """Nest every page module's `bp` under the parent."""
    for name in PAGES:
        parent.register_blueprint(importlib.import_module(f"device_manager.console.views.{name}").bp)
