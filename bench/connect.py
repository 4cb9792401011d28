"""Connect rate of devices with their own credentials: N dynsec device accounts, each connecting once.

Every connect is a real MQTT 3.1.1 CONNECT with the device's username and password, answered by CONNACK 0, then a
DISCONNECT: over TLS (full handshake, CA-verified) and over plain TCP on the same broker for the baseline. The N
accounts are written into the broker's dynsec file before it starts (what the API would have created); the API's
path, the control topic, is timed separately on top of them (`--provision P` devices), with the longest PUBACK
another client waited meanwhile, because the plugin rewrites its whole file on every change.
Used by `python -m bench.ingest --connect N`; alone: `python -m bench.connect [N] [P]`.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iothub import broker_acl, dynsec, dynsec_init
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


def _seed(path: Path, devices: list[tuple[str, str]]) -> None:
    """The broker's first dynsec file with the test accounts and every device's client and role."""
    clients = [{"username": d, **broker_acl.hashed(pw), "roles": [{"rolename": broker_acl.device_role(d)}]}
               for d, pw in devices]
    roles = [{"rolename": broker_acl.device_role(d), "acls": broker_acl.device_acls(d)} for d, _ in devices]
    fleet = {"username": test_mqtt.FLEET[0], **broker_acl.hashed(test_mqtt.FLEET[1]),
             "roles": [{"rolename": test_mqtt.FLEET_ROLE["rolename"]}]}
    dynsec_init.write(path, dict([test_mqtt.ADMIN, test_mqtt.BRIDGE, test_mqtt.COMMANDS]),
                      extra={"clients": [*clients, fleet], "roles": [*roles, test_mqtt.FLEET_ROLE]})


def _provision(broker, count: int) -> dict:
    """Create `count` more devices over the control topic while another client publishes; time both."""
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-stall-probe")
    test_mqtt.auth(test_mqtt.FLEET).apply(probe)
    probe.connect("127.0.0.1", broker.port)
    probe.loop_start()
    admin = dynsec.Dynsec("127.0.0.1", broker.port, test_mqtt.auth(test_mqtt.ADMIN), timeout=600)
    stalls: list[float] = []
    done = threading.Event()

    def ping():
        while not done.is_set():
            t0 = time.perf_counter()
            probe.publish("iot/stall-probe/telemetry", b"x", qos=1).wait_for_publish(60)
            stalls.append(time.perf_counter() - t0)
            time.sleep(0.01)

    pinger = threading.Thread(target=ping, daemon=True)
    t0 = time.perf_counter()
    pinger.start()
    try:
        extra = [(f"prov-{i:05d}", f"pw-{i:05d}") for i in range(count)]
        admin.run([c for d, pw in extra for c in dynsec.create_device(d, pw)])
    finally:
        elapsed = time.perf_counter() - t0
        done.set()
        pinger.join(60)
        admin.close()
        probe.loop_stop()
    return {"count": count, "seconds": elapsed, "max_puback_ms": 1000 * max(stalls, default=0.0),
            "p50_puback_ms": 1000 * statistics.median(stalls) if stalls else 0.0}


def measure(count: int, provision: int = 100) -> dict:
    """A broker holding `count` device accounts: connect each once over plain TCP and TLS, then provision more."""
    devices = [(f"conn-{i:05d}", f"pw-{i:05d}-{'x' * 20}") for i in range(count)]
    workdir = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    (workdir / "mosquitto-data").mkdir()
    _seed(workdir / "mosquitto-data" / "dynamic-security.json", devices)
    broker = procs.mosquitto(workdir, plain=True).start(timeout=120)
    try:
        return {"count": count, "tcp": _rate(broker.plain_port, False, devices),
                "tls": _rate(broker.port, True, devices),
                "provision": _provision(broker, provision) if provision else None}
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(r: dict) -> None:
    """Print the connect-rate table."""
    print(f"\n{r['count']} devices with their own dynsec accounts, each connecting once from {WORKERS} processes\n")
    print(f"| {'transport':<22} | {'connects/s':>10} | {'p50 ms':>6} | {'p99 ms':>6} | {'refused':>7} |")
    print("|" + "|".join("-" * w for w in (24, 12, 8, 8, 9)) + "|")
    for name, key in (("plain TCP + password", "tcp"), ("TLS 1.3 + password", "tls")):
        x = r[key]
        print(f"| {name:<22} | {x['rate']:>10.0f} | {x['p50_ms']:>6.1f} | {x['p99_ms']:>6.1f} | {x['refused']:>7} |")
    print(f"\nTLS connects/s / plain = {r['tls']['rate'] / r['tcp']['rate']:.2f}")
    p = r["provision"]
    if p:
        print(f"provisioning over $CONTROL beside {r['count']} accounts: {p['count']} devices in {p['seconds']:.1f} s "
              f"({p['count'] / p['seconds']:.1f}/s); another client's QoS 1 PUBACK meanwhile: median "
              f"{p['p50_puback_ms']:.1f} ms, max {p['max_puback_ms']:.0f} ms")


def main() -> int:
    """Command line: [N] [P] (defaults 10000 and 100)."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    provision = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    result = measure(count, provision)
    report(result)
    return 0 if result["tls"]["refused"] == result["tcp"]["refused"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
