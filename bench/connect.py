"""Connect rate of devices with their own credentials: N dynsec device accounts, each connecting once.

Every connect is a real MQTT 3.1.1 CONNECT with the device's username and password, answered by CONNACK 0, then a
DISCONNECT: over TLS (full handshake, CA-verified) and over plain TCP on the same broker for the baseline. Used by
`python -m bench.ingest --connect N`; alone: `python -m bench.connect [N]`.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from iothub import dynsec
from tests.support import mqtt as test_mqtt
from tests.support import procs

WORKERS = 4


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _connect_packet(device_id: str, password: str) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0xC2]) + (30).to_bytes(2, "big")  # 3.1.1, user+password+clean, keepalive
    body += _utf8(f"c-{device_id}") + _utf8(device_id) + _utf8(password)
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return b"\x10" + encoded + body


def _worker(port: int, tls: bool, devices: list[tuple[str, str]], out) -> None:
    ctx = test_mqtt.auth(None).context() if tls else None
    latencies, refused = [], 0
    started = time.perf_counter()
    for device_id, password in devices:
        t0 = time.perf_counter()
        raw = socket.create_connection(("127.0.0.1", port))
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx else raw
        try:
            sock.sendall(_connect_packet(device_id, password))
            connack = sock.recv(4)
            refused += connack[:2] != b"\x20\x02" or connack[3] != 0
            sock.sendall(b"\xe0\x00")
        finally:
            sock.close()
        latencies.append(time.perf_counter() - t0)
    out.put((time.perf_counter() - started, latencies, refused))


def _rate(port: int, tls: bool, devices: list[tuple[str, str]]) -> dict:
    out: mp.Queue = mp.Queue()
    workers = [mp.Process(target=_worker, args=(port, tls, devices[i::WORKERS], out)) for i in range(WORKERS)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    results = [out.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join(10)
    latencies = sorted(lat for _, lats, _ in results for lat in lats)
    return {"connects": len(latencies), "rate": len(latencies) / elapsed, "refused": sum(r for _, _, r in results),
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * len(latencies))]}


def measure(broker, count: int) -> dict:
    """Create `count` device accounts (timed), then connect each once over plain TCP and over TLS."""
    devices = [(f"conn-{i:05d}", f"pw-{i:05d}-{'x' * 20}") for i in range(count)]
    admin = dynsec.Dynsec("127.0.0.1", broker.port, test_mqtt.auth(test_mqtt.ADMIN), timeout=120)
    t0 = time.perf_counter()
    try:
        admin.run([c for d, pw in devices for c in dynsec.create_device(d, pw)], tolerate=("already exists",))
    finally:
        admin.close()
    provisioned = time.perf_counter() - t0
    return {"count": count, "provision_s": provisioned, "tcp": _rate(broker.plain_port, False, devices),
            "tls": _rate(broker.port, True, devices)}


def report(r: dict) -> None:
    """Print the connect-rate table."""
    print(f"\n{r['count']} devices with their own dynsec accounts (created in {r['provision_s']:.1f} s, "
          f"{r['count'] / r['provision_s']:.0f}/s), each connecting once from {WORKERS} processes\n")
    print(f"| {'transport':<22} | {'connects/s':>10} | {'p50 ms':>6} | {'p99 ms':>6} | {'refused':>7} |")
    print("|" + "|".join("-" * w for w in (24, 12, 8, 8, 9)) + "|")
    for name, key in (("plain TCP + password", "tcp"), ("TLS 1.3 + password", "tls")):
        x = r[key]
        print(f"| {name:<22} | {x['rate']:>10.0f} | {x['p50_ms']:>6.1f} | {x['p99_ms']:>6.1f} | {x['refused']:>7} |")
    print(f"\nTLS connects/s / plain = {r['tls']['rate'] / r['tcp']['rate']:.2f}")


def main() -> int:
    """Command line: [N] (default 10000)."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workdir = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    broker = procs.mosquitto(workdir, plain=True).start()
    try:
        result = measure(broker, count)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    return 0 if result["tls"]["refused"] == result["tcp"]["refused"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
