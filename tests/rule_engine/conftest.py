"""Rule engine fixtures: the engine in-process, a publisher feeding it, an events tap and rule rows."""

from __future__ import annotations

import threading

import orjson
import pika
import pytest

from iothub import topology
from iothub.rabbit import ConfirmPublisher
from rule_engine.app import RuleEngineApp
from rule_engine.settings import Settings
from tests.support.poll import wait_for


def engine_settings(pg_dsn: str, amqp_url: str, **overrides) -> Settings:
    """Fast test settings: short sweeps; rules reload only on a notice (max age far away)."""
    values = {"environment": "development", "log_level": "INFO", "database_url": pg_dsn, "amqp_url": amqp_url,
              "metrics_port": 0, "batch_size": 200, "prefetch": 100,
              "ingest_partitions": topology.DEFAULT_PARTITIONS, "rebalance_interval": 0.5,
              "rules_min_reload_s": 0.2, "rules_max_age_s": 600.0, "sweep_interval_s": 0.2, "outbox_batch": 500,
              "outbox_interval_s": 0.5, "outbox_retention_h": 168.0, "db_pool_size": 4,
              "persist_seen_s": 30.0, "offline_max_lag_s": 30.0, "config_refresh_s": 30.0}
    return Settings(**(values | overrides))


def start_engine(pg_dsn: str, amqp_url: str, *, owns: int = 0, **overrides) -> RuleEngineApp:
    """A replica in this process, once consuming and owning at least `owns` partitions."""
    app = RuleEngineApp(engine_settings(pg_dsn, amqp_url, **overrides)).start()
    wait_for(app.serving.is_set, what="rule engine serving")
    wait_for(app.consumer.connected.is_set, what="rule engine consuming")
    wait_for(app.listener.connected.is_set, what="rules listener")
    wait_for(lambda: len(app.service.owned) >= owns, timeout=30, what=f"{owns} partitions acquired")
    return app


@pytest.fixture(scope="module")
def engine(pg_dsn, amqp_url):
    """The rule engine running in this process (partition consumer, listener, relay), owning every partition."""
    app = start_engine(pg_dsn, amqp_url, owns=topology.DEFAULT_PARTITIONS)
    yield app
    app.stop()


class Feeder:
    """Publishes collector output (telemetry, gap notices, rule notices) with confirms."""

    def __init__(self, amqp_url: str):
        # Declaring the partitions as the sequencer does, so nothing published before an engine starts is dropped.
        self.publisher = ConfirmPublisher(amqp_url, name="test-feeder", partitions=topology.DEFAULT_PARTITIONS).start()
        self._lock = threading.Lock()
        self.failed = 0
        self.confirmed = 0

    def _settle(self, ok: bool) -> None:
        with self._lock:
            self.confirmed += ok
            self.failed += not ok

    def send(self, message, *, wait: bool = True) -> None:
        """Publish an IngestMessage as the collector does."""
        key = topology.telemetry_key(message.msg_type, message.device_type, message.device_id,
                                     topology.partition_of(message.device_id, topology.DEFAULT_PARTITIONS))
        self.raw(topology.TELEMETRY_EXCHANGE, key, message.encode(), message_id=message.msg_id, wait=wait)

    def gap(self, notice) -> None:
        """Publish a GapNotice."""
        partition = topology.partition_of(notice.device_id, topology.DEFAULT_PARTITIONS)
        key = topology.notice_key("gap", notice.device_type, notice.device_id, partition)
        self.raw(topology.NOTICES_EXCHANGE, key, notice.encode())

    def rules_changed(self) -> None:
        """Publish an iot.rules notice, as the API does after a rule change."""
        self.raw(topology.RULES_EXCHANGE, "", orjson.dumps({"change": "updated"}))

    def raw(self, exchange: str, key: str, body: bytes, *, message_id: str | None = None, wait: bool = True) -> None:
        """Publish bytes; wait=False pipelines (check with `flush`)."""
        if wait:
            assert self.publisher.publish_wait(exchange, key, body, message_id=message_id)
        else:
            self.publisher.publish(exchange, key, body, self._settle, message_id=message_id)

    def flush(self, expected: int, timeout: float = 60) -> None:
        """Wait until `expected` pipelined publishes were confirmed."""
        wait_for(lambda: self.confirmed + self.failed >= expected, timeout=timeout, what="publisher confirms")
        assert self.failed == 0


@pytest.fixture(scope="module")
def feeder(amqp_url):
    """A confirming publisher."""
    f = Feeder(amqp_url)
    yield f
    f.publisher.stop()


class Tap:
    """An exclusive queue bound to an exchange; collects (properties, body) pairs."""

    def __init__(self, amqp_url: str, exchange: str, key: str = "#"):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        topology.declare(self.channel)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange, routing_key=key)
        self.messages: list[tuple] = []

    def drain(self) -> list[tuple]:
        """Fetch everything delivered so far."""
        while True:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.messages
            self.messages.append((method.routing_key, props, body))

    def events(self) -> list[dict]:
        """Decoded event-change bodies."""
        return [orjson.loads(body) for _, _, body in self.drain()]

    def close(self) -> None:
        """Close the connection (the queue goes with it)."""
        self.conn.close()


@pytest.fixture
def events_tap(amqp_url):
    """Every event change published during the test."""
    tap = Tap(amqp_url, topology.EVENTS_EXCHANGE)
    yield tap
    tap.close()


@pytest.fixture
def rules(db):
    """Insert rule rows (deleted after the test); returns the new id."""
    created: list[str] = []

    def make(**kw) -> str:
        columns = ", ".join(kw)
        marks = ", ".join("%s::jsonb" if k == "params" else "%s" for k in kw)
        values = [orjson.dumps(v).decode() if k == "params" else v for k, v in kw.items()]
        with db.transaction() as cur:
            cur.execute(f"INSERT INTO rules ({columns}) VALUES ({marks}) RETURNING id::text", values)  # noqa: S608
            created.append(cur.fetchone()[0])
        return created[-1]

    yield make
    with db.transaction() as cur:
        cur.execute("DELETE FROM rules WHERE id = ANY(%s::uuid[])", (created,))


def reload_rules(engine, feeder) -> None:
    """Announce a rule change and wait until the engine reloaded."""
    version = engine.service.rules_version
    feeder.rules_changed()
    wait_for(lambda: engine.service.rules_version > version, timeout=10, what="rule reload")


def events_of(db, device_id: str, kind: str | None = None) -> list[dict]:
    """Event rows of a device, oldest first."""
    with db.transaction(dict_rows=True) as cur:
        cur.execute("SELECT id::text, rule_id::text, rule_kind, status, count, severity, message, last_value, "
                    "resolved_by, trigger_values FROM events WHERE device_id = %s AND (%s::text IS NULL OR "
                    "rule_kind = %s) ORDER BY first_ts, created_at", (device_id, kind, kind))
        return [dict(r) for r in cur.fetchall()]


def processed_seq(engine, device_id: str) -> int:
    """Newest seq the in-process engine committed for a device (-2 if none); memory follows the commit."""
    with engine.service.lock:
        prog = engine.service.evaluator.progress.get(device_id)
        return prog.seq if prog else -2


@pytest.fixture
def rig(engine, feeder, events_tap, rules, db):
    """The usual fixtures in one object (engine, feeder, events_tap, rules, db)."""
    from types import SimpleNamespace

    return SimpleNamespace(engine=engine, feeder=feeder, tap=events_tap, rules=rules, db=db)
