"""Pure per-device sequence tracking: duplicates, gaps, late fills, reboots and 2^32 wrap-around."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

MODULUS = 2**32
HALF = 2**31
WINDOW = 64
WINDOW_MASK = 2**64 - 1
SLOTS = 128  # fingerprint ring: seq % SLOTS; a power of two that divides 2^32 and holds the window plus last_seq
# A jump "forward" across the 2^32 wrap longer than this is a restart of the counter, not a wrap: a device sending
# every second needs 136 years to wrap once, never mind losing 65,536 messages exactly there.
WRAP_SLACK = 2**16
# A redelivered hello repeats its ts and uptime exactly; 1 s absorbs uptime rounding, while a quick reboot
# (after an OTA, or a crash loop) moves the boot time by more and must start a new epoch.
BOOT_TOLERANCE = timedelta(seconds=1)


class Status(StrEnum):
    """What the tracker decided about one sequenced message."""

    FIRST = "first"  # first message ever seen from the device
    RENEWED = "renewed"  # first message of a device registered anew under the same id: its history starts over
    NEXT = "next"  # the expected seq
    GAP = "gap"  # a jump forward; `missing` seqs were skipped
    LATE = "late"  # below last_seq, inside the window, not seen before: fills a gap
    REBOOT = "reboot"  # the device restarted: a new epoch begins with this message
    DUPLICATE = "duplicate"  # a redelivery of a message already accepted (or too old to tell): drop


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision plus what downstream needs: the epoch and, for a gap, what was expected."""

    status: Status
    epoch: int
    expected: int = 0
    missing: int = 0

    @property
    def accepted(self) -> bool:
        """Whether the message is to be published."""
        return self.status is not Status.DUPLICATE


def new_prints() -> array:
    """An empty fingerprint ring (0 = no fingerprint known)."""
    return array("I", bytes(4 * SLOTS))


@dataclass(slots=True)
class DeviceSeq:
    """One device's sequence state; mirrors a device_seq_tracking row."""

    device_id: str
    epoch: int
    last_seq: int
    window_bits: int = 0  # bit i set = seq last_seq-1-i seen
    gaps_total: int = 0
    missing_total: int = 0
    duplicates_total: int = 0
    reboots_total: int = 0
    boot_at: datetime | None = None
    last_ts: datetime | None = None  # latest device ts accepted in this epoch: a redelivery never exceeds it
    prints: array = field(default_factory=new_prints)  # fingerprint of each seen seq in the window, by seq % SLOTS
    registration: str | None = None  # devices.id of the registration this history belongs to
    prev_ts: datetime | None = None  # latest device ts of earlier epochs: a message no later is one of their copies
    dirty: bool = field(default=True, compare=False)


Loader = Callable[[str], "DeviceSeq | None"]


@dataclass(frozen=True, slots=True)
class Seen:
    """What the tracker reads from one message besides its seq."""

    msg_type: str = "telemetry"
    uptime_s: int | None = None  # hellos only
    ts: datetime | None = None  # the envelope's device time
    print_: int = 0  # 32-bit fingerprint of the content (0: unknown)
    registration: str | None = None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional times."""
    return a if b is None or (a is not None and a > b) else b


def _end_of(previous: datetime | None, first: datetime | None) -> datetime | None:
    """Where the earlier epochs end, given the new one's first ts: a boot within the same (whole) second as the last
    message must keep its later messages of that second, so the boundary moves just before it."""
    if previous is None or first is None or first > previous:
        return previous
    return first - timedelta(microseconds=1)


class SequenceTracker:
    """Decides per (device_id, seq); not thread-safe: the caller holds one lock around it."""

    def __init__(self, load: Loader, *, reboot_uptime_s: int = 120):
        self._load = load
        self._reboot_uptime_s = reboot_uptime_s
        self._devices: dict[str, DeviceSeq] = {}
        self._absent: set[str] = set()  # devices known to have no stored state

    def unknown(self, device_ids) -> list[str]:
        """Those of these devices whose stored state has not been looked up yet."""
        return [d for d in dict.fromkeys(device_ids) if d not in self._devices and d not in self._absent]

    def prime(self, device_ids, states: dict[str, DeviceSeq]) -> None:
        """Take the stored states of these devices (looked up in one go); those without one are new."""
        for device_id in device_ids:
            st = states.get(device_id)
            if st is None:
                self._absent.add(device_id)
            else:
                st.dirty = False
                self._devices[device_id] = st

    def state(self, device_id: str) -> DeviceSeq | None:
        """The cached state of a device, loading it on first sight."""
        st = self._devices.get(device_id)
        if st is None and device_id not in self._absent:
            st = self._load(device_id)
            self.prime([device_id], {} if st is None else {device_id: st})
        return st

    def observe(self, device_id: str, seq: int, *, msg_type: str = "telemetry", uptime_s: int | None = None,
                ts: datetime | None = None, print_: int = 0, registration: str | None = None) -> Verdict:
        """Classify one message and update the state."""
        seen = Seen(msg_type, uptime_s, ts, print_, registration)
        st = self.state(device_id)
        boot = seen.ts - timedelta(seconds=seen.uptime_s) if seen.ts and seen.uptime_s is not None else None
        if st is None or (registration is not None and st.registration not in (None, registration)):
            return self._begin(device_id, st, seq, seen, boot)
        if registration is not None and st.registration is None:
            st.registration = registration  # a state stored before registrations were tracked: adopt it
            st.dirty = True
        if seen.ts is not None and st.prev_ts is not None and seen.ts <= st.prev_ts:
            # Older than the end of the previous epoch: a copy of an earlier boot's message that a lagging broker
            # delivers only now (the device's clock does not run back across a power cycle).
            return self._duplicate(st)
        return self._judge(st, seq, seen, boot)

    def _judge(self, st: DeviceSeq, seq: int, seen: Seen, boot: datetime | None) -> Verdict:
        forward = (seq - st.last_seq) % MODULUS
        if seen.msg_type == "hello" and self._is_reboot_hello(st, forward, seen.uptime_s, boot):
            return self._reboot(st, seq, seen, boot)
        if 0 < forward < HALF:
            if seq < st.last_seq and forward > WRAP_SLACK:  # "forward" only by wrapping round: a restart at 0
                return self._reboot(st, seq, seen, boot)
            return self._advance(st, seq, forward, seen, boot if seen.msg_type == "hello" else None)
        return self._behind(st, seq, (MODULUS - forward) % MODULUS, seen, boot)

    def _behind(self, st: DeviceSeq, seq: int, behind: int, seen: Seen, boot: datetime | None) -> Verdict:
        # At or below last_seq. A redelivery repeats a message already accepted, so it is never later than the
        # latest one and has the same content; a new boot's message is later, or says something else.
        if seen.ts is not None and st.last_ts is not None and seen.ts > st.last_ts:
            return self._reboot(st, seq, seen, boot)
        if behind <= WINDOW:
            bit = 1 << (behind - 1) if behind else 0
            if bit and not st.window_bits & bit:
                st.window_bits |= bit
                st.prints[seq % SLOTS] = seen.print_
                st.dirty = True
                return Verdict(Status.LATE, st.epoch)
            known = st.prints[seq % SLOTS]
            if seen.print_ and known and seen.print_ != known:
                return self._reboot(st, seq, seen, boot)
        elif seen.ts is None and seq < behind:
            # No time to judge by; far below the last seq and nearer to 0 than to it: the device restarted counting.
            return self._reboot(st, seq, seen, boot)
        return self._duplicate(st)

    @staticmethod
    def _duplicate(st: DeviceSeq) -> Verdict:
        st.duplicates_total += 1
        st.dirty = True
        return Verdict(Status.DUPLICATE, st.epoch)

    def _is_reboot_hello(self, st: DeviceSeq, forward: int, uptime_s: int | None, boot: datetime | None) -> bool:
        if uptime_s is None or uptime_s >= self._reboot_uptime_s or 0 < forward < HALF:
            return False
        # A hello at or below last_seq: a new boot, unless it is a redelivery of this boot's hello.
        return st.boot_at is None or boot is None or abs(boot - st.boot_at) > BOOT_TOLERANCE

    def _advance(self, st: DeviceSeq, seq: int, forward: int, seen: Seen, boot: datetime | None) -> Verdict:
        expected = (st.last_seq + 1) % MODULUS
        if forward <= WINDOW:
            st.window_bits = ((st.window_bits << forward) | (1 << (forward - 1))) & WINDOW_MASK
        else:
            st.window_bits = 0
        st.last_seq = seq
        st.prints[seq % SLOTS] = seen.print_
        if seen.ts is not None and (st.last_ts is None or seen.ts > st.last_ts):
            st.last_ts = seen.ts
        if boot is not None:
            st.boot_at = boot
        st.dirty = True
        if forward == 1:
            return Verdict(Status.NEXT, st.epoch)
        st.gaps_total += 1
        st.missing_total += forward - 1
        return Verdict(Status.GAP, st.epoch, expected, forward - 1)

    @staticmethod
    def _restart(st: DeviceSeq, seq: int, seen: Seen, boot: datetime | None) -> None:
        st.last_seq = seq
        st.window_bits = 0
        st.prints = new_prints()
        st.prints[seq % SLOTS] = seen.print_
        st.last_ts = seen.ts
        st.boot_at = boot
        st.dirty = True

    def _reboot(self, st: DeviceSeq, seq: int, seen: Seen, boot: datetime | None) -> Verdict:
        st.prev_ts = _end_of(_latest(st.prev_ts, st.last_ts), seen.ts)
        st.epoch += 1
        st.reboots_total += 1
        self._restart(st, seq, seen, boot)
        return Verdict(Status.REBOOT, st.epoch)

    def _begin(self, device_id: str, old: DeviceSeq | None, seq: int, seen: Seen, boot: datetime | None) -> Verdict:
        # A new device, or a replacement unit under the same id: nothing of the old one's sequence applies, but
        # epochs keep counting up so that msg_id = uuid5(device_id/epoch/seq) never names an old unit's message.
        epoch = 0 if old is None else old.epoch + 1
        st = self._devices[device_id] = DeviceSeq(device_id, epoch, seq, registration=seen.registration)
        self._restart(st, seq, seen, boot)
        if old is not None:
            st.prev_ts = _end_of(_latest(old.prev_ts, old.last_ts), seen.ts)
        return Verdict(Status.FIRST if old is None else Status.RENEWED, epoch)

    def known(self) -> list[str]:
        """The devices whose state is cached."""
        return list(self._devices)

    def forget(self, device_ids) -> None:
        """Drop cached states (a partition handed over, a batch that did not land): reload them when next seen."""
        for device_id in device_ids:
            self._devices.pop(device_id, None)
            self._absent.discard(device_id)

    def take_dirty(self, device_ids) -> list[DeviceSeq]:
        """Copies of these devices' changed states, marked clean (only observe() changes a state, so the devices
        of the batches since the last take are the only ones that can be dirty)."""
        rows = []
        for device_id in device_ids:
            st = self._devices.get(device_id)
            if st is not None and st.dirty:
                st.dirty = False
                rows.append(DeviceSeq(st.device_id, st.epoch, st.last_seq, st.window_bits, st.gaps_total,
                                      st.missing_total, st.duplicates_total, st.reboots_total, st.boot_at,
                                      st.last_ts, array("I", st.prints), st.registration, st.prev_ts))
        return rows
