"""What signing costs per command: `python -m bench.signing [--commands 10000] [--runs 7]`.

Baseline in the same run: serialising the same start_ota without a signature (what the MQTT publisher does anyway).
Measured: per command, the key decrypted from its stored form (AES-256-GCM), the canonical form, the HMAC-SHA256
and the signed serialisation, as the device manager's HmacSigner + CommandPublisher do for a rollout.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from iothub import command_keys
from iothub.contract.commands import encode_command
from iothub.contract.signing import signature

TS, EXP = "2026-02-12T10:10:00Z", "2026-02-12T11:10:00Z"
PARAMS = {"fw_version": "2.2.0", "fw_sha256": "e3" * 32, "fw_size_bytes": 524288,
          "fw_url": "http://s3.local:8333/iot-firmware/firmware/x.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
                    "X-Amz-Expires=3600&X-Amz-Signature=" + "a" * 64}


def main(argv: list[str] | None = None) -> None:
    """Print per-command medians of both and their ratio."""
    p = argparse.ArgumentParser(prog="python -m bench.signing")
    p.add_argument("--commands", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    kek = command_keys.Kek(command_keys.new_key())
    devices = [f"bench-{i:06d}" for i in range(args.commands)]
    stored = {d: kek.wrap(d, command_keys.new_key()) for d in devices}
    cmds = [(d, str(uuid.uuid4())) for d in devices]

    def plain() -> None:
        for _, cmd_id in cmds:
            encode_command(cmd_id, "start_ota", PARAMS, TS)

    def signed() -> None:
        for device_id, cmd_id in cmds:
            key = kek.unwrap(device_id, stored[device_id])
            sig = signature(key, device_id, {"cmd_id": cmd_id, "ts": TS, "exp": EXP, "cmd": "start_ota",
                                             "params": PARAMS})
            encode_command(cmd_id, "start_ota", PARAMS, TS, exp=EXP, sig=sig)

    medians = {}
    for name, run in (("unsigned (baseline)", plain), ("signed", signed)):
        per = []
        for _ in range(args.runs):
            started = time.perf_counter()
            run()
            per.append((time.perf_counter() - started) * 1e6 / len(cmds))
        medians[name] = statistics.median(per)
        print(f"{name:>20}: {medians[name]:6.1f} us/command (median of {args.runs} x {len(cmds)})")
    extra = medians["signed"] - medians["unsigned (baseline)"]
    print(f"{'signing adds':>20}: {extra:6.1f} us/command, x{medians['signed'] / medians['unsigned (baseline)']:.1f}; "
          f"a {len(cmds)}-device rollout signs in {extra * len(cmds) / 1e6:.2f} s")


if __name__ == "__main__":
    main()
