"""Sending one-time verification codes by email over SMTP (``BURNLINK_SMTP_URL``).

``smtp://user:password@host:587?starttls=1`` upgrades with STARTTLS; ``smtps://host:465`` uses
TLS from the start; plain ``smtp://host:25`` sends in the clear (only for a local relay).
The message names no secret and carries no link: only the code and when it expires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from burnlink.errors import ConfigError, MailUnavailable


class Mailer(Protocol):
    """Sends a verification code to an address."""

    async def send_code(self, to: str, code: str, *, minutes_valid: int) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """A ``Mailer`` over SMTP, via aiosmtplib."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    implicit_tls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpMailer:
        """Parse ``BURNLINK_SMTP_URL``; raise ``ConfigError`` naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                "BURNLINK_SMTP_URL: use smtp://[user:password@]host[:port][?starttls=1]"
            )
        if not sender:
            raise ConfigError("BURNLINK_SMTP_FROM: required when BURNLINK_SMTP_URL is set")
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
            implicit_tls=implicit,
        )

    async def send_code(self, to: str, code: str, *, minutes_valid: int) -> None:
        """Send the code; raise ``MailUnavailable`` if the server refuses or cannot be reached."""
        import aiosmtplib

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = "Your burnlink verification code"
        message.set_content(
            f"Your verification code is {code}\n\n"
            f"Someone with a burnlink link addressed to you asked to open it. Enter this code on "
            f"that page within {minutes_valid} minutes. If that was not you, ignore this mail: "
            f"without the code, the secret cannot be opened.\n"
        )
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                use_tls=self.implicit_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(type(exc).__name__) from None
