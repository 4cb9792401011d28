"""The webhook channel: POST the event change as JSON, signed with the subscription's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import requests

from notifier.service import Claim, Outcome

SIGNATURE_HEADER = "X-IoTHub-Signature"
_RETRYABLE_CODES = {408, 425, 429}


def encode(payload: dict) -> bytes:
    """The exact body bytes: canonical JSON, identical on every attempt."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    """Header value: sha256=<hex HMAC-SHA256 of the body keyed by the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_retryable(status: int) -> bool:
    """Server errors, timeouts and throttling are worth retrying; other non-2xx answers are final."""
    return status >= 500 or status in _RETRYABLE_CODES


class WebhookNotifier:
    """Notifier posting with one keep-alive session per worker thread."""

    def __init__(self, timeout: float, user_agent: str = "iothub-notifier/0.1"):
        self._timeout = timeout
        self._user_agent = user_agent
        self._local = threading.local()

    def send(self, claim: Claim) -> Outcome:
        """POST once; 2xx is sent, anything else an error with the status code."""
        body = encode(claim.change.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            "X-IoTHub-Event-Id": claim.change.event.id,
            "X-IoTHub-Change-Id": claim.change.change_id,
            "X-IoTHub-Change": claim.change.change,
            "X-IoTHub-Delivery": claim.notification_id,
            "X-IoTHub-Attempt": str(claim.attempt),
        }
        if claim.secret:
            headers[SIGNATURE_HEADER] = sign(claim.secret, body)
        try:
            response = self._session().post(claim.target, data=body, headers=headers,
                                            timeout=(self._timeout, self._timeout), allow_redirects=False)
        except requests.Timeout as exc:
            return Outcome(False, error=f"timeout: {exc}"[:500])
        except requests.RequestException as exc:
            retryable = not isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                                       | requests.exceptions.InvalidSchema)
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500], retryable=retryable)
        code = response.status_code
        response.close()
        if 200 <= code < 300:
            return Outcome(True, response_code=code)
        return Outcome(False, response_code=code, error=f"HTTP {code}", retryable=is_retryable(code))

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session
