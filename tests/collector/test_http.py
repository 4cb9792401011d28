"""HTTP ingest over HTTPS: same validation and sequencing as MQTT, 202 only once the message is durably on its
partition; clients verify the server's certificate against the run's CA."""

from __future__ import annotations

import orjson
import pytest
import requests

from iothub import topology
from iothub.contract.ingest import message_id
from tests.collector.conftest import sample, telemetry
from tests.support.poll import wait_for


@pytest.fixture(autouse=True)
def _trust_the_run_ca(tls_files, monkeypatch):
    """Clients verify the server against the run's CA, as `make run` clients do (REQUESTS_CA_BUNDLE)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files.ca)


def _url(edge) -> str:
    return f"https://127.0.0.1:{edge.http.port}/api/v1/telemetry"


def _post(edge, body, *, headers=None, raw: bytes | None = None):
    data = raw if raw is not None else orjson.dumps(body)
    return requests.post(_url(edge), data=data, timeout=15,
                         headers={"Content-Type": "application/json", **(headers or {})})


def _assert_error(response, status: int, reason: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if reason:
        assert error["details"]["reason"] == reason


def test_accepted_message_is_on_the_exchange_when_202_returns(edge, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    first = telemetry(dev, 1, n=2)
    response = _post(edge, first)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    body = wait_for(out.bodies, what="the message")[0]
    assert (body["source"], body["seq"], body["msg_id"]) == ("http", 1, message_id(dev, 0, 1))
    again = _post(edge, first)  # a client retrying the same body: accepted at the edge, dropped by the sequencer
    assert again.status_code == 202
    wait_for(edge.drained, what="the retry judged")
    assert [b["seq"] for b in out.bodies()] == [1]


def test_http_and_mqtt_share_the_sequence_state(edge, device, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    five = telemetry(dev, 5)
    device.send(dev, five)
    wait_for(lambda: len(out.drain()) == 1, what="mqtt message")
    assert _post(edge, five).status_code == 202  # the same message by the other path: a duplicate
    assert _post(edge, telemetry(dev, 6)).status_code == 202
    wait_for(lambda: len(out.drain()) == 2, what="seq 6")
    wait_for(edge.drained, what="all judged")
    assert [b["seq"] for b in out.bodies()] == [5, 6]


def test_bad_input_gets_the_standard_error_body_and_is_dead_lettered(edge, make_device, tap):
    dev = make_device()
    dead = tap(topology.DEAD_LETTER_EXCHANGE, [""])
    before = sample("iothub_collector_messages_rejected_total", source="http", reason="malformed_json")
    _assert_error(_post(edge, None, raw=b"{not json"), 400, "malformed_json")
    _assert_error(_post(edge, telemetry(dev, 1, n=500)), 400, "too_many_measurements")
    _assert_error(_post(edge, telemetry("ghost-" + dev, 1)), 400, "unknown_device")
    _assert_error(_post(edge, {**telemetry(dev, 1), "seq": -4}), 400, "bad_value")
    assert sample("iothub_collector_messages_rejected_total", source="http", reason="malformed_json") - before == 1
    parked = wait_for(lambda: [p for p, b in dead.drain() if b == b"{not json"], what="dead letter")
    assert parked[0].headers[topology.DL_SOURCE] == "http"


def test_oversized_body_is_413_and_wrong_content_type_is_415(edge, make_device):
    dev = make_device()
    _assert_error(_post(edge, {**telemetry(dev, 1), "pad": "x" * 70_000}), 413, "too_large")
    response = requests.post(_url(edge), data=orjson.dumps(telemetry(dev, 1)), timeout=15,
                             headers={"Content-Type": "text/plain"})
    _assert_error(response, 415)


def test_device_token_is_checked_when_required(start_edge, make_device, tap):
    edge = start_edge(HTTP_REQUIRE_DEVICE_TOKEN="true")
    dev = make_device(token="s3cret")
    other = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    _assert_error(_post(edge, telemetry(dev, 1)), 401, "unauthorized")
    _assert_error(_post(edge, telemetry(dev, 1), headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    _assert_error(_post(edge, telemetry(other, 1), headers={"Authorization": "Bearer s3cret"}), 401)
    ok = _post(edge, telemetry(dev, 1), headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 202
    assert [b["seq"] for b in wait_for(out.bodies, what="authorised message")] == [1]


def test_plain_http_and_an_unknown_ca_are_refused(edge, make_device, tmp_path):
    from tests.support.tls import make_tls_files

    body = orjson.dumps(telemetry(make_device(), 1))
    with pytest.raises(requests.ConnectionError):  # plain HTTP on the TLS port: no answer an HTTP client accepts
        requests.post(_url(edge).replace("https", "http"), data=body, timeout=15,
                      headers={"Content-Type": "application/json"})
    other = make_tls_files(tmp_path)
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(_url(edge), data=body, timeout=15, verify=other.ca, headers={"Content-Type": "application/json"})


def test_tls_1_3_is_preferred_1_2_accepted_and_nothing_older(edge, tls_files):
    import socket
    import ssl

    from iothub import tls

    def negotiated(maximum: ssl.TLSVersion) -> str:
        client = ssl.create_default_context(cafile=tls_files.ca)
        client.maximum_version = maximum
        with socket.create_connection(("127.0.0.1", edge.http.port), timeout=10) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            return conn.version()

    assert negotiated(ssl.TLSVersion.MAXIMUM_SUPPORTED) == "TLSv1.3"
    assert negotiated(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    context = tls.server_context(tls_files.cert, tls_files.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_an_oversized_body_gets_its_413_not_a_reset(edge, make_device):
    """The server closes after a 413; it reads the rest of a body up to DRAIN_LIMIT first, or a client still sending
    would see a TLS EOF instead of the answer (without the drain most of these failed)."""
    dev = make_device()
    for size in (100_000, 400_000, 900_000) * 3:
        _assert_error(_post(edge, {**telemetry(dev, 1), "pad": "x" * size}), 413, "too_large")
