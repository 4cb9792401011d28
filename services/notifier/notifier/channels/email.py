"""The email channel: a plain-text message over SMTP (smtplib)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from notifier import render
from notifier.service import Claim, Outcome


def build(claim: Claim, sender: str) -> EmailMessage:
    """The message for one notification; the target may list several addresses separated by commas."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = claim.target
    message["Subject"] = render.subject(claim.change)
    message["Message-ID"] = make_msgid(idstring=claim.notification_id.replace("-", ""))
    message["X-IoTHub-Event-Id"] = claim.change.event.id
    message.set_content(render.text(claim.change))
    return message


class EmailNotifier:
    """Notifier opening one SMTP session per message (notifications are rare, sessions are cheap)."""

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None,
                 password: str | None = None, tls: str = "none", timeout: float = 10.0):
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._tls, self._timeout = tls, timeout

    def send(self, claim: Claim) -> Outcome:
        """Submit once; SMTP 5xx rejections are final, everything else is retried."""
        try:
            message = build(claim, self._sender)
        except ValueError as exc:  # e.g. an address with a line break: no retry can fix it
            return Outcome(False, error=f"invalid message: {exc}"[:500], retryable=False)
        try:
            with self._connect() as smtp:
                if self._tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            return Outcome(False, response_code=exc.smtp_code, error=f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}",
                           retryable=exc.smtp_code < 500)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return Outcome(False, response_code=max(codes, default=None), error=f"recipients refused: {exc}"[:500],
                           retryable=all(code < 500 for code in codes))
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
        if refused:  # some recipients accepted: the message is out, report who was not reached
            return Outcome(True, response_code=250, error=f"refused: {', '.join(sorted(refused))}"[:500])
        return Outcome(True, response_code=250)

    def _connect(self) -> smtplib.SMTP:
        if self._tls == "ssl":
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout)


def _text(value: bytes | str) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else str(value))[:400]
