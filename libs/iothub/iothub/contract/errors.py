"""Typed validation errors shared by every ingest path."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message was rejected; the value is the metric label and the dead-letter reason."""

    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    NON_FINITE = "non_finite"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_VALUE = "bad_value"
    BAD_TIMESTAMP = "bad_timestamp"
    TOO_MANY_MEASUREMENTS = "too_many_measurements"
    UNSUPPORTED_VERSION = "unsupported_version"
    DEVICE_MISMATCH = "device_mismatch"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_TOPIC = "unknown_topic"
    UNAUTHORIZED = "unauthorized"


class InvalidMessage(Exception):
    """A device message that breaks the protocol; never retried, always dead-lettered."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
