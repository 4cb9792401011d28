"""Firmware update state machine: downloading -> verifying -> applying -> success, or failed at some stage."""

from __future__ import annotations

import random
import re
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DOWNLOAD_STEPS = (0.0, 25.0, 50.0, 75.0, 100.0)
FAILURES = {
    "downloading": "download interrupted",
    "verifying": "sha256 mismatch",
    "applying": "flash write failed",
}


@dataclass(frozen=True, slots=True)
class OtaStep:
    """One ota_status report."""

    state: str
    progress: float
    detail: str = ""

    @property
    def final(self) -> bool:
        """True for success and failed."""
        return self.state in ("success", "failed")


@dataclass(frozen=True, slots=True)
class OtaRequest:
    """Validated start_ota parameters."""

    fw_version: str
    url: str
    sha256: str
    size: int


# The firmware spec's param name -> the name older IoT Hub releases send; both are accepted in every profile.
SPELLINGS = {"fw_url": "url", "fw_sha256": "sha256", "fw_size_bytes": "size"}


def parse_request(params: dict[str, Any]) -> OtaRequest:
    """Validate start_ota params (spec or legacy names); raises ValueError naming the bad key."""
    fw = params.get("fw_version")
    (url_key, url), (sha_key, sha), (size_key, size) = (_pick(params, k) for k in SPELLINGS)
    if not isinstance(fw, str) or not SEMVER_RE.match(fw):
        raise ValueError("fw_version must be semver")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{url_key} must be an http(s) URL")
    if not isinstance(sha, str) or not SHA256_RE.match(sha):
        raise ValueError(f"{sha_key} must be 64 lowercase hex digits")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"{size_key} must be a positive integer")
    return OtaRequest(fw, url, sha, size)


def _pick(params: dict[str, Any], spec_key: str) -> tuple[str, Any]:
    """(name used, value): the spec's name wins when both are present; a missing value is named the spec's way."""
    legacy = SPELLINGS[spec_key]
    if spec_key not in params and legacy in params:
        return legacy, params[legacy]
    return spec_key, params.get(spec_key)


class OtaJob:
    """The steps one update will report, decided up front from the failure probability."""

    __slots__ = ("cmd_id", "download", "request", "steps")

    def __init__(self, cmd_id: str, request: OtaRequest, rng: random.Random, failure_rate: float,
                 download: Future[str] | None = None):
        self.cmd_id = cmd_id
        self.request = request
        self.download = download  # fetch_and_check's verdict on the real image ('' when it matches)
        steps = [OtaStep("downloading", p) for p in DOWNLOAD_STEPS]
        steps += [OtaStep("verifying", 100.0), OtaStep("applying", 100.0), OtaStep("success", 100.0)]
        if rng.random() < failure_rate:
            cut = rng.randrange(1, len(steps) - 1)  # fail after at least one report, before success
            stage = steps[cut - 1]
            steps = [*steps[:cut], OtaStep("failed", stage.progress, FAILURES[stage.state])]
        self.steps = steps

    def downloading(self) -> bool:
        """True while verification waits for the image; a mismatch turns the next step into `failed` (REQ-OTA-003)."""
        if self.download is None or not self.steps or self.steps[0].state != "verifying":
            return False
        if not self.download.done():
            return True
        problem = self.download.result()
        self.download = None
        if problem:
            self.steps = [OtaStep("verifying", 100.0), OtaStep("failed", 100.0, problem)]
        return False

    def advance(self) -> OtaStep:
        """The next report; the job is done once a final step was returned."""
        return self.steps.pop(0)

    @property
    def target(self) -> str:
        """The firmware version being installed."""
        return self.request.fw_version
