"""Notifier tests."""
