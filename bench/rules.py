"""Rule evaluation throughput: 1,000 rules over 1,000 devices, in-process and through the real consumer.

Usage: `python bench/rules.py [--repeats 5] [--messages-per-device 20]` (needs the local PostgreSQL and RabbitMQ;
creates and drops its own database and vhost). Every figure is printed next to a baseline measured in the same run;
medians over the repeats.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from iothub import topology  # noqa: E402
from iothub.contract.ingest import IngestMessage, message_id  # noqa: E402
from iothub.rabbit import BatchConsumer, ConfirmPublisher, ConsumerConfig  # noqa: E402
from rule_engine.decode import decode_batch  # noqa: E402
from rule_engine.evaluator import Evaluator  # noqa: E402
from rule_engine.model import Rule, RuleIndex, iso  # noqa: E402

DEVICES, RULES, TYPES = 1000, 1000, 10
METRICS = (("voltage_dc", "V", 750.0, 1000.0), ("current_dc", "A", 200.0, 600.0), ("temperature", "Cel", 40.0, 70.0))


def make_rules() -> list[Rule]:
    """900 device-scoped, 90 device-type and 10 fleet-wide rules on the three metrics."""
    rng = random.Random(7)
    rules = []
    for i in range(RULES):
        metric, _, _, limit = METRICS[i % 3]
        scope = "device" if i < 900 else "device_type" if i < 990 else "all"
        rules.append(Rule(str(uuid.UUID(int=i + 1)), f"bench {i}", scope=scope, device_id=f"dev-{i % DEVICES}",
                          device_type=f"type-{i % TYPES}", metric=metric, operator="gt",
                          threshold=limit + (rng.random() * 50 if scope != "device" else 0), for_seconds=0,
                          clear_hysteresis=5, renotify_seconds=300))
    return rules


def make_bodies(per_device: int, epoch: int, base: float) -> list[bytes]:
    """Telemetry datagrams with the three metrics; about 1 % of readings breach."""
    rng = random.Random(epoch)
    bodies = []
    for seq in range(per_device):
        for d in range(DEVICES):
            device = f"dev-{d}"
            ts = iso(base + seq)
            ms = [{"ts": ts, "type": m, "unit": u,
                   "val": limit + 10 if (d % 100 == 0 and m == "temperature") or rng.random() < 0.003
                   else normal + rng.random()} for m, u, normal, limit in METRICS]
            bodies.append(IngestMessage(message_id(device, epoch, seq), device, f"type-{d % TYPES}", "telemetry", ts,
                                        seq, epoch, iso(time.time()), "mqtt", {"measurements": ms}).encode())
    return bodies


def timed(fn) -> float:
    """CPU seconds one call takes in this process (the machine is shared; wall time would measure neighbours)."""
    started = time.process_time()
    fn()
    return time.process_time() - started


def bench_in_process(repeats: int, per_device: int) -> dict[str, list[float]]:
    """Measurements per CPU-second: decode only (baseline), evaluate pre-decoded inputs, decode + evaluate."""
    rules = make_rules()
    labels = ("in-process decode only (baseline), per CPU-s", "in-process evaluate only, per CPU-s",
              "in-process decode + evaluate, per CPU-s")
    out: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(repeats):
        bodies = make_bodies(per_device, r + 1, time.time() - 3600)
        n = len(bodies) * len(METRICS)
        inputs, _ = decode_batch(bodies)
        ev = Evaluator(RuleIndex(rules))

        def evaluate(ev: Evaluator, inputs=inputs) -> None:
            for start in range(0, len(inputs), 500):  # the consumer's batch size
                ch = ev.begin(time.time())
                for inp in inputs[start:start + 500]:
                    ev.process(ch, inp)
                ev.commit(ch)

        out[labels[0]].append(n / timed(lambda b=bodies: decode_batch(b)))
        out[labels[1]].append(n / timed(lambda e=ev: evaluate(e)))
        ev2 = Evaluator(RuleIndex(rules))
        out[labels[2]].append(n / timed(lambda b=bodies, e=ev2: evaluate(e, decode_batch(b)[0])))
    return out


# The baseline's own queue: every accepted message, as the rule engine's partitions receive them together.
BASELINE = topology.Queue("bench.rules.baseline", ((topology.TELEMETRY_EXCHANGE, "#"),))


def _publish(amqp_url: str, bodies: list[bytes]) -> None:
    pub = ConfirmPublisher(amqp_url, name="bench-feeder", partitions=topology.DEFAULT_PARTITIONS).start()
    done = threading.Semaphore(0)
    for body in bodies:
        d = orjson.loads(body)
        key = topology.telemetry_key("telemetry", d["device_type"], d["device_id"],
                                     topology.partition_of(d["device_id"], topology.DEFAULT_PARTITIONS))
        pub.publish(topology.TELEMETRY_EXCHANGE, key, body, lambda ok: done.release())
    for _ in bodies:
        done.acquire()
    pub.stop()


def _purge_other_queues(amqp_url: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    topology.declare(ch, topology.DEFAULT_PARTITIONS)
    topology.declare_queue(ch, BASELINE)
    for queue in (*topology.QUEUES, *topology.partition_queues(topology.DEFAULT_PARTITIONS), BASELINE):
        ch.queue_purge(queue.name)
    conn.close()


def bench_consumer(repeats: int, per_device: int) -> dict[str, list[float]]:
    """Measurements/s through RabbitMQ: a decode-only BatchConsumer (baseline) vs the rule engine with PostgreSQL."""
    from iothub.db import Database
    from rule_engine.app import RuleEngineApp
    from tests.rule_engine.conftest import engine_settings
    from tests.support import infra

    name = f"bench_rules_{uuid.uuid4().hex[:8]}"
    dsn, amqp_url = infra.create_database(name), infra.create_vhost(name)
    base_label, engine_label = "consume + decode + ack (baseline)", "rule engine (PostgreSQL, outbox)"
    out: dict[str, list[float]] = {f"{base_label}, wall": [], f"{engine_label}, wall": [],
                                   f"{base_label}, per own CPU-s": [], f"{engine_label}, per own CPU-s": []}
    try:
        db = Database(dsn)
        with db.transaction() as cur:
            cur.execute("UPDATE rules SET enabled = false")  # only the bench's rules
            for r in make_rules():
                cur.execute("INSERT INTO rules (id, name, scope, device_id, device_type, metric, operator, threshold,"
                            " clear_hysteresis, renotify_seconds) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                            (r.id, r.name, r.scope, r.device_id if r.scope == "device" else None,
                             r.device_type if r.scope == "device_type" else None, r.metric, r.operator, r.threshold,
                             r.clear_hysteresis, r.renotify_seconds))
        db.close()
        queue = BASELINE.name
        for r in range(repeats):
            bodies = make_bodies(per_device, 100 + r, time.time() - 3600)
            n, total = len(bodies) * len(METRICS), len(bodies)
            _purge_other_queues(amqp_url)
            _publish(amqp_url, bodies)
            seen = [0]

            def decode_only(batch, seen=seen):
                decode_batch([d.body for d in batch])
                seen[0] += len(batch)

            consumer = BatchConsumer(amqp_url, ConsumerConfig(queue, batch_size=500, batch_wait=0.1, prefetch=2000),
                                     decode_only)
            started, cpu = time.perf_counter(), time.process_time()
            threading.Thread(target=consumer.run, daemon=True).start()
            while seen[0] < total:
                time.sleep(0.01)
            out[f"{base_label}, wall"].append(n / (time.perf_counter() - started))
            out[f"{base_label}, per own CPU-s"].append(n / (time.process_time() - cpu))
            consumer.stop()
            time.sleep(1)  # let the consumer close before the queue is refilled
            _purge_other_queues(amqp_url)
            _publish(amqp_url, bodies)
            app = RuleEngineApp(engine_settings(dsn, amqp_url, batch_size=500, prefetch=250,
                                                sweep_interval_s=1.0, log_level="WARNING"))
            last = per_device - 1
            started, cpu = time.perf_counter(), time.process_time()
            app.start()
            while not app.serving.is_set():
                time.sleep(0.01)
            while sum(1 for p in list(app.service.evaluator.progress.values())
                      if p.epoch == 100 + r and p.seq == last) < DEVICES:
                time.sleep(0.01)
            out[f"{engine_label}, wall"].append(n / (time.perf_counter() - started))
            out[f"{engine_label}, per own CPU-s"].append(n / (time.process_time() - cpu))
            app.stop()
    finally:
        infra.delete_vhost(name)
        infra.drop_database(name)
    return out


def main() -> int:
    """Run both benchmarks and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each path; medians are reported")
    parser.add_argument("--messages-per-device", type=int, default=20, help="datagrams per device per run")
    parser.add_argument("--skip-consumer", action="store_true",
                        help="in-process paths only, without the RabbitMQ consumer and the full rule engine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # connection-close warnings of the stopped apps are expected
    print(f"{RULES} rules ({RULES - 100} device, 90 device-type, 10 all) over {DEVICES} devices, "
          f"{len(METRICS)} measurements per datagram, {args.messages_per_device} datagrams per device")
    results = bench_in_process(args.repeats, args.messages_per_device)
    if not args.skip_consumer:
        results |= bench_consumer(max(1, args.repeats // 2 + 1), args.messages_per_device // 2 or 1)
    print(f"{'path':58} {'median meas/s':>14} {'min':>10} {'max':>10}  runs")
    for label, values in results.items():
        print(f"{label:58} {statistics.median(values):14,.0f} {min(values):10,.0f} {max(values):10,.0f}  {len(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
