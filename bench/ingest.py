"""Ingest benchmark: collector (MQTT QoS 1 -> RabbitMQ with confirms) beside a bare paho QoS 1 subscriber.

Usage: python -m bench.ingest [--messages 40000] [--devices 40] [--publishers 3] [--transport both|tls|tcp]
                              [--connect 10000]
Starts the project's Mosquitto, a temporary vhost and database; bounded in time (< 3 minutes per transport).
`--transport both` (the default) measures plain TCP and TLS on the same broker in the same run (plain, TLS, TLS,
plain), every client
authenticated (the collector as its bridge account), and prints TLS's cost; `--connect N` adds the connect rate of N
devices with their own credentials (bench.connect).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pika
import psutil
import requests
from paho.mqtt.enums import CallbackAPIVersion

from bench import connect
from iothub import topology
from iothub.mqtt_tls import MqttAuth
from tests.support import infra, procs, queues
from tests.support import mqtt as test_mqtt

MEASUREMENTS = 20
PHASE_TIMEOUT = 60.0


def _payloads(device_ids: list[str], per_device: int) -> list[tuple[str, bytes]]:
    """Pre-encoded telemetry datagrams, interleaved across devices, seq 1.. per device."""
    ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for seq in range(1, per_device + 1):
        for dev in device_ids:
            body = {"v": 2, "device_id": dev, "msg_type": "telemetry", "seq": seq, "ts": ts,
                    "measurements": [{"ts": ts, "type": f"metric_{i}", "val": 20.0 + i * 0.5, "unit": "C"}
                                     for i in range(MEASUREMENTS)]}
            out.append((f"iot/{dev}/telemetry", orjson.dumps(body)))
    return out


def _publish(port: int, auth: MqttAuth, device_ids: list[str], per_device: int, go) -> None:
    """One publisher process: QoS 1 as fast as the broker takes it."""
    payloads = _payloads(device_ids, per_device)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    auth.apply(client)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    go.wait()
    info = None
    for topic, body in payloads:
        info = client.publish(topic, body, qos=1)
    if info is not None:
        info.wait_for_publish(PHASE_TIMEOUT)
    client.disconnect()
    client.loop_stop()


def _bare_subscriber(port: int, auth: MqttAuth, expected: int, ready, result) -> None:
    """A bare paho QoS 1 subscriber: counts messages, reports (count, first, last, cpu seconds)."""
    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(client, userdata, msg):
        now = time.perf_counter()
        state["first"] = state["first"] or now
        state["last"] = now
        state["n"] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{uuid.uuid4().hex[:8]}")
    auth.apply(client)
    client.on_message = on_message
    client.on_subscribe = lambda *a: ready.set()
    client.connect("127.0.0.1", port)
    client.subscribe("iot/+/telemetry", qos=1)
    deadline = time.monotonic() + PHASE_TIMEOUT
    while state["n"] < expected and time.monotonic() < deadline:
        client.loop(0.1)
    cpu = psutil.Process().cpu_times()
    result.put((state["n"], state["first"], state["last"], cpu.user + cpu.system,
                psutil.Process().memory_info().rss))


def _run_publishers(port: int, auth: MqttAuth, devices: list[str], per_device: int, publishers: int,
                    go) -> list[mp.Process]:
    chunks = [devices[i::publishers] for i in range(publishers)]
    procs_ = [mp.Process(target=_publish, args=(port, auth, chunk, per_device, go)) for chunk in chunks]
    for p in procs_:
        p.start()
    return procs_


def bench_bare(port: int, tls: bool, devices: list[str], per_device: int, publishers: int) -> dict:
    """Rate of a bare paho QoS 1 subscriber on the same broker and workload."""
    ctx_ready, go, result = mp.Event(), mp.Event(), mp.Queue()
    total = len(devices) * per_device
    sub = mp.Process(target=_bare_subscriber, args=(port, _auth(test_mqtt.BRIDGE, tls), total, ctx_ready, result))
    sub.start()
    ctx_ready.wait(10)
    pubs = _run_publishers(port, _auth(test_mqtt.FLEET, tls), devices, per_device, publishers, go)
    time.sleep(1.0)  # let the publishers pre-encode before the clock starts
    go.set()
    n, first, last, cpu, rss = result.get(timeout=PHASE_TIMEOUT + 10)
    for p in [*pubs, sub]:
        p.join(10)
    elapsed = max(last - first, 1e-9)
    return {"received": n, "expected": total, "rate": (n - 1) / elapsed, "cpu_pct": 100 * cpu / elapsed,
            "rss_mb": rss / 2**20, "p50_ms": None, "p99_ms": None}


def _metrics(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + labels + r"\}" if labels else r"(\{[^}]*\})?") + r" ([0-9.e+-]+)"
    return sum(float(m.group(m.lastindex)) for m in re.finditer(pattern, text))


def _quantile(text: str, q: float) -> float:
    """Quantile from the latency histogram: the upper bound of the bucket that reaches q (seconds)."""
    buckets = [(float(le), float(v)) for le, v in re.findall(
        r'iothub_collector_bridge_latency_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+-]+)', text)]
    total = _value(text, "iothub_collector_bridge_latency_seconds_count")
    return next((le for le, v in buckets if v >= q * total), float("inf"))


def _auth(account: tuple[str, str], tls: bool) -> MqttAuth:
    """The account over TLS (the run's CA) or plain TCP."""
    return test_mqtt.auth(account) if tls else MqttAuth(username=account[0], password=account[1])


def bench_collector(port: int, tls: bool, dsn: str, amqp_url: str, devices: list[str], per_device: int,
                    publishers: int, workdir: Path, *, fanout: str = "all") -> dict:
    """Rate, latency, CPU and RSS of `python -m collector` (edge and sequencer in one process, no writers)."""
    metrics_port = procs.free_port()
    account = test_mqtt.env(test_mqtt.BRIDGE) if tls else {"MQTT_USERNAME": test_mqtt.BRIDGE[0],
                                                           "MQTT_PASSWORD": test_mqtt.BRIDGE[1]}
    env = {**os.environ, "IOTHUB_ENV": "development", "DATABASE_URL": dsn, "AMQP_URL": amqp_url, **account,
           "MQTT_PORT": str(port), "MQTT_CLIENT_ID": f"bench-collector-{uuid.uuid4().hex[:6]}",
           "METRICS_PORT": str(metrics_port), "HTTP_INGEST_ENABLED": "false", "WRITERS": "none", "LOG_LEVEL": "WARNING"}
    with open(workdir / "collector.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "collector"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    ps = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while not _ready(metrics_port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "collector.log").read_text()[-2000:])
        time.sleep(0.2)
    if fanout == "one":
        _drop_queues(amqp_url)
    total = len(devices) * per_device
    go = mp.Event()
    pubs = _run_publishers(port, _auth(test_mqtt.FLEET, tls), devices, per_device, publishers, go)
    time.sleep(1.0)
    cpu0 = sum(ps.cpu_times()[:2])
    go.set()
    first = last = None
    seen, rss, pending = 0.0, 0, 0.0
    deadline = time.monotonic() + PHASE_TIMEOUT
    while seen < total and time.monotonic() < deadline:
        time.sleep(0.1)  # each scrape costs the collector CPU: poll no more than needed
        text = _metrics(metrics_port)
        now, seen = time.perf_counter(), _value(text, "iothub_collector_messages_accepted_total")
        pending = max(pending, _value(text, "iothub_collector_pending_acks"))
        rss = max(rss, ps.memory_info().rss)
        if seen and first is None:
            first, first_seen = now, seen
        if seen:
            last = now
    cpu = sum(ps.cpu_times()[:2]) - cpu0
    text = _metrics(metrics_port)
    for p in pubs:
        p.join(10)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
    elapsed = max((last or 0) - (first or 0), 1e-9)
    return {"received": int(seen), "expected": total, "rate": (seen - first_seen) / elapsed if first else 0.0,
            "cpu_pct": 100 * cpu / elapsed, "rss_mb": rss / 2**20, "p50_ms": 1000 * _quantile(text, 0.5),
            "p99_ms": 1000 * _quantile(text, 0.99), "amqp_messages": _depth(amqp_url), "queued": _queued(amqp_url),
            "max_pending_acks": int(pending)}


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def _drop_queues(amqp_url: str) -> None:
    """Leave collector.series as the only telemetry queue: the edge's cost without RabbitMQ's 4-queue fan-out."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        rule_engine = [topology.rule_engine_queue(p) for p in range(topology.DEFAULT_PARTITIONS)]
        for queue in (topology.ARCHIVE_QUEUE, topology.STATE_QUEUE, *rule_engine):
            ch.queue_delete(queue.name)
    finally:
        conn.close()


def _depth(amqp_url: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return conn.channel().queue_declare(topology.SERIES_QUEUE.name, passive=True).method.message_count
    finally:
        conn.close()


def _queued(amqp_url: str) -> tuple[int, int]:
    """(distinct, total) messages on collector.series, bundles counted by their parts; drains the queue."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ids: set[str] = set()
    total = 0
    try:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=500)
        for method, props, body in channel.consume(topology.SERIES_QUEUE.name, inactivity_timeout=2):
            if method is None:
                break
            for part_props, _ in queues.split(props, body):
                ids.add(part_props.message_id)
                total += 1
            channel.basic_ack(method.delivery_tag)
        channel.cancel()
    finally:
        conn.close()
    return len(ids), total


def _register(dsn: str, count: int) -> list[str]:
    import psycopg2

    devices = [f"bench-{i:04d}" for i in range(count)]
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO device_types (name) VALUES ('bench') RETURNING id")
        type_id = cur.fetchone()[0]
        cur.executemany("INSERT INTO devices (device_id, name, device_type_id) VALUES (%s, %s, %s)",
                        [(d, d, type_id) for d in devices])
    return devices


def _phase(broker, tls: bool, args, per_device: int) -> tuple[dict, dict]:
    """Bare subscriber and collector on one transport, each transport with its own database and vhost."""
    run = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    dsn = infra.create_database(f"iothub_bench_{run}")
    amqp_url = infra.create_vhost(f"iothub-bench-{run}")
    port = broker.port if tls else broker.plain_port
    try:
        devices = _register(dsn, args.devices)
        bare = bench_bare(port, tls, devices, per_device, args.publishers)
        coll = bench_collector(port, tls, dsn, amqp_url, devices, per_device, args.publishers, workdir,
                               fanout=args.fanout)
    finally:
        infra.delete_vhost(f"iothub-bench-{run}")
        infra.drop_database(f"iothub_bench_{run}")
        shutil.rmtree(workdir, ignore_errors=True)
    return bare, coll


def _table(title: str, bare: dict, coll: dict) -> tuple[float, int]:
    print(f"\n{title}\n")
    print(f"| {'subscriber':<28} | {'msgs/s':>8} | {'meas/s':>9} | {'p50 ms':>6} | {'p99 ms':>6} | "
          f"{'CPU %':>5} | {'RSS MB':>6} | {'received':>9} |")
    print("|" + "|".join("-" * w for w in (30, 10, 11, 8, 8, 7, 8, 11)) + "|")
    for name, r in (("bare paho QoS 1 subscriber", bare), ("collector -> RabbitMQ confirms", coll)):
        p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
        p99 = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
        print(f"| {name:<28} | {r['rate']:>8.0f} | {r['rate'] * MEASUREMENTS:>9.0f} | {p50:>6} | {p99:>6} | "
              f"{r['cpu_pct']:>5.0f} | {r['rss_mb']:>6.0f} | {r['received']:>9} |")
    ratio = coll["rate"] / bare["rate"] if bare["rate"] else 0.0
    distinct, total = coll["queued"]
    lost = coll["expected"] - distinct
    print(f"\ncollector / bare = {ratio:.2f} (bar: >= 0.50); on {topology.SERIES_QUEUE.name}: {distinct} distinct of "
          f"{coll['expected']} (lost {lost}, duplicated {total - distinct}) in {coll['amqp_messages']} AMQP messages; "
          f"peak pending MQTT acks {coll['max_pending_acks']}; latency percentiles are histogram bucket upper bounds")
    return ratio, lost


def main() -> int:
    """Run the phases of each transport and print the comparison tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000, help="QoS 1 datagrams per phase")
    parser.add_argument("--devices", type=int, default=40, help="devices the datagrams are spread over")
    parser.add_argument("--publishers", type=int, default=3, help="publisher processes")
    parser.add_argument("--fanout", choices=("all", "one"), default="all",
                        help="all: every queue of the topology bound (production); one: only collector.series")
    parser.add_argument("--transport", choices=("both", "tls", "tcp"), default="both",
                        help="both: plain TCP then TLS on the same broker, and TLS's cost")
    parser.add_argument("--connect", type=int, default=0, help="also measure connects/s of N credentialed devices")
    args = parser.parse_args()
    per_device = max(1, args.messages // args.devices)
    workdir = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    broker = procs.mosquitto(workdir, plain=True).start()
    started = time.monotonic()
    results, ok = {}, True
    try:
        # both: plain, TLS, TLS, plain (ABBA), so warm-up and drifting load weigh on each transport alike.
        for tls in {"both": (False, True, True, False), "tls": (True,), "tcp": (False,)}[args.transport]:
            results.setdefault(tls, []).append(_phase(broker, tls, args, per_device))
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    connects = connect.measure(args.connect) if args.connect else None
    print(f"\n{args.devices * per_device} QoS 1 datagrams of {MEASUREMENTS} measurements, {args.devices} devices, "
          f"{args.publishers} publisher processes, {os.cpu_count()} CPUs, fan-out {args.fanout}, "
          f"load {os.getloadavg()[0]:.1f}, {time.monotonic() - started:.0f} s; every client authenticated")
    for tls, phases in results.items():
        for n, (bare, coll) in enumerate(phases, 1):
            ratio, lost = _table(f"{'TLS 1.3 (CA-verified)' if tls else 'plain TCP'}, phase {n}", bare, coll)
            ok = ok and ratio >= 0.5 and lost == 0
    if len(results) == 2:
        tcp, tls = (sum(c["rate"] for _, c in results[t]) / len(results[t]) for t in (False, True))
        # CPU per message moves far less with the machine's load than msg/s does.
        cpu_tcp, cpu_tls = (sum(10_000 * c["cpu_pct"] / c["rate"] for _, c in results[t]) / len(results[t])
                            for t in (False, True))
        cost = 1 - tls / tcp
        print(f"\ncollector msg/s, mean of the phases: plain TCP {tcp:.0f}, TLS {tls:.0f}; "
              f"TLS cost {100 * cost:.1f} % (bar: < 15 %); collector CPU per 1,000 messages: plain TCP "
              f"{cpu_tcp:.0f} ms, TLS {cpu_tls:.0f} ms ({100 * (cpu_tls / cpu_tcp - 1):+.0f} %)")
        ok = ok and cost < 0.15
    if connects:
        connect.report(connects)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
