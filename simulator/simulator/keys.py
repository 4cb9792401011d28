"""Where the simulated fleet's command keys come from: one per device, derived from SIM_COMMAND_KEY_SEED.

A real factory writes a random key into each meter and registers it; the simulator derives them so `provision`
(which stores them for the device manager) and `run` (which verifies with them) agree without sharing a file.
"""

from __future__ import annotations

import hmac

LABEL = b"iothub-sim-command-key\n"


def device_key(seed: bytes | None, device_id: str) -> bytes | None:
    """The device's 32-byte command key, None when the fleet has no seed (it then rejects every command)."""
    if not seed:
        return None
    return hmac.digest(seed, LABEL + device_id.encode(), "sha256")
