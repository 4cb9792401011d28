"""Command signatures: the canonical form against a vector computed with openssl, and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from iothub import command_keys
from iothub.contract.commands import encode_command
from iothub.contract.signing import SignatureError, canonical, signature, stamp, verify

KEY = bytes(range(32))  # 000102...1f
BODY = {"v": 2, "cmd_id": "c5d6e7f8-1a2b-3c4d-5e6f-7a8b9c0d1e2f", "ts": "2026-02-12T10:10:00Z",
        "exp": "2026-02-12T10:15:00Z", "cmd": "update_config", "params": {"send_interval_s": 5}}
# printf 'iothub-cmd-v1\ndc-meter-007\nc5d6e7f8-...\n2026-02-12T10:10:00Z\n2026-02-12T10:15:00Z\nupdate_config\n
# {"send_interval_s":5}' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f
VECTOR = "5f519596d3627ca2b9c3719d2949d5d0acac09eae72969eaad12934bab6acffc"
NOW = datetime(2026, 2, 12, 10, 11, tzinfo=UTC)


def test_canonical_form_is_the_documented_lines():
    assert canonical("dc-meter-007", BODY) == (
        b"iothub-cmd-v1\ndc-meter-007\nc5d6e7f8-1a2b-3c4d-5e6f-7a8b9c0d1e2f\n2026-02-12T10:10:00Z\n"
        b"2026-02-12T10:15:00Z\nupdate_config\n{\"send_interval_s\":5}")


def test_signature_matches_the_hand_computed_vector():
    assert signature(KEY, "dc-meter-007", BODY) == VECTOR


def test_params_are_signed_with_sorted_keys_whatever_order_they_arrive_in():
    a = {**BODY, "params": {"send_interval_s": 5, "brokers": [{"port": 1883, "host": "b"}]}}
    b = {**BODY, "params": {"brokers": [{"host": "b", "port": 1883}], "send_interval_s": 5}}
    assert signature(KEY, "d", a) == signature(KEY, "d", b)
    assert canonical("d", a).endswith(b'{"brokers":[{"host":"b","port":1883}],"send_interval_s":5}')


def test_a_signed_command_survives_the_wire_and_verifies():
    raw = encode_command(BODY["cmd_id"], BODY["cmd"], BODY["params"], BODY["ts"], exp=BODY["exp"], sig=VECTOR)
    verify(KEY, "dc-meter-007", orjson.loads(raw), now=NOW)


@pytest.mark.parametrize(("change", "reason"), [
    ({"sig": None}, "missing signature"),
    ({"sig": VECTOR}, None),
    ({"sig": "0" * 64}, "bad signature"),
    ({"sig": VECTOR, "params": {"send_interval_s": 6}}, "bad signature"),
    ({"sig": VECTOR, "cmd": "reboot"}, "bad signature"),
    ({"sig": VECTOR, "exp": "2026-02-12T11:15:00Z"}, "bad signature"),
])
def test_any_tampering_is_refused(change, reason):
    body = {**BODY, **change}
    if reason is None:
        verify(KEY, "dc-meter-007", body, now=NOW)
        return
    with pytest.raises(SignatureError, match=reason):
        verify(KEY, "dc-meter-007", body, now=NOW)


def test_another_devices_key_or_id_does_not_verify_and_no_key_refuses():
    body = {**BODY, "sig": VECTOR}
    with pytest.raises(SignatureError, match="bad signature"):
        verify(KEY, "dc-meter-008", body, now=NOW)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(bytes(32), "dc-meter-007", body, now=NOW)
    with pytest.raises(SignatureError, match="no command key"):
        verify(None, "dc-meter-007", body, now=NOW)


def test_expired_and_future_commands_are_refused_even_when_signed():
    body = {**BODY, "sig": VECTOR}
    with pytest.raises(SignatureError, match="expired"):
        verify(KEY, "dc-meter-007", body, now=datetime(2026, 2, 12, 10, 16, tzinfo=UTC))
    with pytest.raises(SignatureError, match="future"):
        verify(KEY, "dc-meter-007", body, now=datetime(2026, 2, 12, 10, 8, tzinfo=UTC))


def test_missing_exp_is_refused_before_any_hmac():
    body = {k: v for k, v in BODY.items() if k != "exp"}
    with pytest.raises(SignatureError, match="must be non-empty strings"):
        verify(KEY, "dc-meter-007", {**body, "sig": VECTOR}, now=NOW)


def test_stamp_is_second_precision_utc():
    assert stamp(datetime(2026, 2, 12, 10, 10, 0, 999, tzinfo=UTC)) == "2026-02-12T10:10:00Z"


def test_wrapped_key_round_trips_and_is_bound_to_kek_and_device():
    kek = command_keys.parse_kek("00" * 32)
    blob = command_keys.wrap(kek, "dev-1", KEY)
    assert KEY not in blob and command_keys.unwrap(kek, "dev-1", blob) == KEY
    with pytest.raises(command_keys.KeyWrapError):
        command_keys.unwrap(kek, "dev-2", blob)
    with pytest.raises(command_keys.KeyWrapError):
        command_keys.unwrap(command_keys.parse_kek("11" * 32), "dev-1", blob)


def test_kek_accepts_base64_and_hex_and_refuses_short_keys():
    import base64

    raw = bytes(range(32))
    assert command_keys.parse_kek(base64.b64encode(raw).decode()) == raw
    assert command_keys.parse_kek(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert command_keys.parse_kek(raw.hex()) == raw
    with pytest.raises(command_keys.KeyWrapError):
        command_keys.parse_kek("c2hvcnQ=")
