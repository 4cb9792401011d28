"""Dead-letter recorder: parked messages land once in dead_letters; poison from a writer reaches it."""

from __future__ import annotations

import threading

import orjson

from collector.writers import start_writers
from iothub import topology
from tests.support.poll import wait_for

DLQ = topology.DEAD_LETTER_QUEUE.name


def _letters(db, marker):
    with db.transaction(dict_rows=True) as cur:
        cur.execute("""SELECT message_id, source, reason, detail, exchange, routing_key, headers, body, status
                       FROM dead_letters WHERE body::text LIKE %s OR message_id LIKE %s ORDER BY received_at""",
                    (f"%{marker.encode().hex()}%", f"%{marker}%"))
        return cur.fetchall()


def _headers(reason, source="collector.ingest", **extra):
    return {topology.DL_REASON: reason, topology.DL_DETAIL: "detail of " + reason, topology.DL_SOURCE: source,
            topology.DL_EXCHANGE: "mqtt", topology.DL_ROUTING_KEY: "iot/x/telemetry", **extra}


def test_dead_letters_recorded_once_with_headers(writer_kit):
    kit = writer_kit
    kit.purge(DLQ)
    marker = f"dl{kit.uid}"
    with_id = f"{marker}-with-id"
    body = orjson.dumps({"marker": marker, "n": 1})
    anonymous = orjson.dumps({"marker": marker, "n": 2})
    for _ in range(2):  # each published twice: a redelivery must not add rows
        kit.raw(topology.DEAD_LETTER_EXCHANGE, "", body, message_id=with_id, headers=_headers("malformed_json"))
        kit.raw(topology.DEAD_LETTER_EXCHANGE, "", anonymous, headers=_headers("too_large", n=7))
    kit.start("dead_letters", kit.settings(WRITERS="dead_letters"))
    rows = wait_for(lambda: len(r := _letters(kit.db, marker)) >= 2 and r, timeout=20, what="two dead letters")

    sentinel = f"{marker}-sentinel"
    kit.raw(topology.DEAD_LETTER_EXCHANGE, "", b"sentinel", message_id=sentinel, headers={})
    wait_for(lambda: len(_letters(kit.db, marker)) == 3, timeout=20, what="sentinel recorded")
    rows = {bytes(r["body"]): r for r in _letters(kit.db, marker)}
    first, second = rows[body], rows[anonymous]
    assert (first["message_id"], first["source"], first["reason"], first["detail"], first["exchange"],
            first["routing_key"], first["status"]) == (with_id, "collector.ingest", "malformed_json",
                                                       "detail of malformed_json", "mqtt", "iot/x/telemetry", "parked")
    assert second["message_id"].startswith("sha256:") and second["headers"]["n"] == 7
    assert (rows[b"sentinel"]["source"], rows[b"sentinel"]["reason"]) == ("unknown", "unknown")

    # An operator replays it and it fails again: parked anew with the new reason, not swallowed as a duplicate.
    with kit.db.transaction() as cur:
        cur.execute("UPDATE dead_letters SET status = 'replayed', handled_by = 'op' WHERE message_id = %s", (with_id,))
    kit.raw(topology.DEAD_LETTER_EXCHANGE, "", body, message_id=with_id, headers=_headers("handler_error"))
    again = wait_for(lambda: [r for r in _letters(kit.db, marker) if r["message_id"] == with_id
                              and r["status"] == "parked"], timeout=20, what="letter parked again")
    assert again[0]["reason"] == "handler_error"
    assert len(_letters(kit.db, marker)) == 3


def test_poison_from_a_writer_is_parked_and_start_writers_stops(writer_kit):
    kit = writer_kit
    kit.purge(DLQ, topology.SERIES_QUEUE.name)
    marker = f"poison{kit.uid}"
    stop = threading.Event()
    handles = start_writers(kit.settings(WRITERS="series,dead_letters"), kit.db, stop)
    try:
        wait_for(lambda: all(h.ready() for h in handles), timeout=15, what="writers connected")
        kit.raw(topology.TELEMETRY_EXCHANGE, f"telemetry.t.{marker}", f"not json {marker}".encode(),
                message_id=marker)
        (row,) = wait_for(lambda: _letters(kit.db, marker), timeout=20, what="poison parked")
        assert (row["source"], row["reason"], row["exchange"], row["routing_key"]) == (
            topology.SERIES_QUEUE.name, "undecodable", topology.TELEMETRY_EXCHANGE, f"telemetry.t.{marker}")
    finally:
        stop.set()
        for handle in handles:
            handle.join(15)
    assert not any(h.thread.is_alive() for h in handles)
