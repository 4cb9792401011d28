"""Metering domain: power derived per sample instant and energy integrated from it (docs/metering.md); pure code."""
