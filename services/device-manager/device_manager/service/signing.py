"""Signed commands: every command leaves through SignedPublisher, which stamps it and has it signed (Signer port)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from device_manager.service.commands import Outgoing, Publisher
from iothub.contract.signing import stamp

log = logging.getLogger("device_manager.signing")


class Signer(Protocol):
    """Signs command bodies under each device's own key (the HMAC adapter holds the keys and the crypto)."""

    def sign_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[str | None]:
        """One signature per (device_id, body) in order; None for a device that has no command key."""


class SignedPublisher:
    """A Publisher that publishes only signed commands: issued now, valid until the command expires, at most ttl
    (docs/protocol.md, Signed commands)."""

    def __init__(self, inner: Publisher, signer: Signer, ttl: timedelta, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_unsigned: Callable[[int], None] | None = None):
        self.inner, self.signer, self.ttl, self.clock = inner, signer, ttl, clock
        self.on_unsigned = on_unsigned or (lambda _n: None)  # counts commands refused for want of a key

    def publish_many(self, commands: Iterable[Outgoing]) -> set[str]:
        """Sign and publish; a command whose device has no key is not sent (it stays pending and expires)."""
        stamped = [self._stamp(c) for c in commands]
        signatures = self.signer.sign_many([(c.device_id, body_of(c)) for c in stamped])
        signed = [dataclasses.replace(c, sig=sig) for c, sig in zip(stamped, signatures, strict=True) if sig]
        if len(signed) < len(stamped):
            missing = len(stamped) - len(signed)
            self.on_unsigned(missing)
            log.warning("commands not sent: device has no command key", extra={"count": missing})
        return self.inner.publish_many(signed) if signed else set()

    def _stamp(self, c: Outgoing) -> Outgoing:
        now = self.clock()
        until = min(c.expires_at, now + self.ttl) if c.expires_at is not None else now + self.ttl
        return dataclasses.replace(c, ts=stamp(now), exp=stamp(until))

    def is_connected(self) -> bool:
        """The transport's readiness."""
        return self.inner.is_connected()

    def close(self) -> None:
        """Close the transport."""
        self.inner.close()


def body_of(c: Outgoing) -> dict[str, Any]:
    """The signed fields of an outgoing command, as the device will see them."""
    return {"cmd_id": c.cmd_id, "ts": c.ts, "exp": c.exp, "cmd": c.cmd, "params": c.params}
