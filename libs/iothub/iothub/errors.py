"""Failure kinds every adapter raises so that one consumer policy can decide ack, retry or dead-letter."""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency (database, object store, broker, series store) is down: retry the same message later."""


class Rejected(Exception):
    """This message can never succeed: dead-letter it with the reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
