"""The wire contract: device envelopes, MQTT topics, broker messages, commands."""

from iothub.contract.envelope import Envelope, parse, validate
from iothub.contract.errors import InvalidMessage, Reason
from iothub.contract.ingest import BridgedMessage, GapNotice, IngestMessage, SeenNotice

__all__ = ["BridgedMessage", "Envelope", "GapNotice", "IngestMessage", "InvalidMessage", "Reason", "SeenNotice",
           "parse", "validate"]
