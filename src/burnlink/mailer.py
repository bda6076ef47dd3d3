"""Sending one-time verification codes, and notices that a request was answered, by email
over SMTP (``BURNLINK_SMTP_URL``).

``smtp://user:password@host:587?starttls=1`` upgrades with STARTTLS; ``smtps://host:465`` uses
TLS from the start; plain ``smtp://host:25`` sends in the clear (only for a local relay).
The message names no secret and carries no link: only the code and when it expires. It is
written in the language of the page that asked for it (``mail.subject`` and ``mail.body`` of
the catalogue, ``burnlink.i18n``), English when that language has no catalogue.

The envelope (``MAIL FROM``, ``RCPT TO``) is given to the SMTP server explicitly, never derived
from the headers: the one recipient is the one address the secret names, checked again here so
that no stored value can ever reach a second inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cache
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from email_validator import EmailNotValidError, validate_email

from burnlink.errors import ConfigError, InvalidInput, MailUnavailable
from burnlink.i18n import DEFAULT_LANGUAGE, Catalogue, load_catalogues
from burnlink.policy import parse_email


class Mailer(Protocol):
    """Sends a verification code to an address, in a language (a catalogue's tag)."""

    async def send_code(
        self, to: str, code: str, *, minutes_valid: int, language: str = DEFAULT_LANGUAGE
    ) -> None: ...


@cache
def _catalogues() -> dict[str, Catalogue]:
    return load_catalogues()


def code_message(code: str, minutes_valid: int, language: str) -> tuple[str, str, str]:
    """``(language, subject, body)`` of the mail carrying ``code``, in ``language`` when it has
    a catalogue (in English otherwise)."""
    catalogues = _catalogues()
    catalogue = catalogues.get(language, catalogues[DEFAULT_LANGUAGE])
    body = catalogue.t("mail.body", count=minutes_valid, code=code)
    return catalogue.language, catalogue.t("mail.subject"), body


@dataclass(frozen=True)
class SmtpMailer:
    """A ``Mailer`` over SMTP, via aiosmtplib."""

    host: str
    port: int
    sender: str
    """The ``From`` header, as configured (``burnlink <noreply@example.org>`` or a bare address)."""
    envelope_sender: str
    """The address alone, for ``MAIL FROM``."""
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
        envelope_sender = sender_address(sender)
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            sender=sender,
            envelope_sender=envelope_sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
            implicit_tls=implicit,
        )

    async def send_code(
        self, to: str, code: str, *, minutes_valid: int, language: str = DEFAULT_LANGUAGE
    ) -> None:
        """Send the code to ``to`` alone, in ``language``; raise ``MailUnavailable`` if ``to`` is
        not exactly one address (nothing is sent) or the server refuses or cannot be reached."""
        try:
            # Secrets stored before addresses were checked this strictly may hold a list.
            recipient = parse_email(to)
        except InvalidInput:
            raise MailUnavailable("invalid recipient") from None

        written_in, subject, body = code_message(code, minutes_valid, language)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        message["Content-Language"] = written_in  # after set_content, which drops Content-*
        await self._deliver(message, recipient)

    async def send_notice(self, to: str, subject: str, text: str) -> None:
        """Send a plain notice (``subject``, ``text``: never a secret, key or link with a
        fragment) to ``to`` alone; ``MailUnavailable`` as for ``send_code``."""
        try:
            recipient = parse_email(to)
        except InvalidInput:
            raise MailUnavailable("invalid recipient") from None
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(text)
        await self._deliver(message, recipient)

    async def _deliver(self, message: EmailMessage, recipient: str) -> None:
        """Send ``message`` to ``recipient`` through the configured server;
        ``MailUnavailable`` naming only the kind of failure."""
        import aiosmtplib

        try:
            await aiosmtplib.send(
                message,
                sender=self.envelope_sender,
                recipients=[recipient],
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


def sender_address(sender: str) -> str:
    """The address in ``BURNLINK_SMTP_FROM`` (a display name is allowed); ``ConfigError`` unless
    it holds exactly one."""
    try:
        checked = validate_email(
            sender.strip(),
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=True,
        )
    except EmailNotValidError as exc:
        raise ConfigError(f"BURNLINK_SMTP_FROM: must be one email address: {exc}") from None
    return checked.normalized
