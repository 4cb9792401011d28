"""Typed reads of environment variables; each service's settings module is the only caller."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEVELOPMENT = "development"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A missing or malformed environment variable."""


class Env:
    """Reads variables from one mapping and records every name it was asked for."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self.names: set[str] = set()

    def str(self, name: str, default: str | None = None) -> str:
        """A string; required when no default is given."""
        self.names.add(name)
        value = self._environ.get(name)
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"{name} must be set")
            return default
        return value

    def optional(self, name: str) -> str | None:
        """A string that may be absent."""
        self.names.add(name)
        return self._environ.get(name) or None

    def int(self, name: str, default: int) -> int:
        """An integer."""
        raw = self.str(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

    def float(self, name: str, default: float) -> float:
        """A float."""
        raw = self.str(name, str(default))
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None

    def bool(self, name: str, default: bool) -> bool:
        """A boolean spelled 1/0, true/false, yes/no or on/off."""
        raw = self.str(name, "true" if default else "false").strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{name} must be a boolean, got {raw!r}")

    def list(self, name: str, default: str = "") -> tuple[str, ...]:
        """A comma-separated list."""
        raw = self.str(name, default) if default else (self.optional(name) or "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def secret(self, name: str, *, environment: str, dev_default: str) -> str:
        """A secret: required outside development mode, where a fixed default would be a hole."""
        value = self.optional(name)
        if value:
            return value
        if environment == DEVELOPMENT:
            return dev_default
        raise SettingsError(f"{name} must be set when IOTHUB_ENV is {environment!r}")
