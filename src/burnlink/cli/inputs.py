"""Where the CLI's inputs come from: the secret, the passphrase, and TTL strings.

The secret comes from ``--file``, else from a pipe (read as bytes, exactly), else from a prompt
without echo. A passphrase comes from ``--passphrase-file``, ``BURNLINK_PASSPHRASE`` or the
terminal (``/dev/tty``, which works while the secret is piped in), never from an argument that
``ps`` or the shell history would show.
"""

from __future__ import annotations

import getpass
import mimetypes
import os
import re
import sys
from pathlib import Path

import click

from burnlink.crypto import Payload
from burnlink.errors import InvalidInput

PASSPHRASE_ENV = "BURNLINK_PASSPHRASE"  # noqa: S105 - the variable's name, not a passphrase
PROMPT_TRIES = 3

_TTL_RE = re.compile(r"(?P<count>[0-9]{1,10})(?P<unit>[smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_ttl(text: str) -> int:
    """Seconds from ``30s``, ``10m``, ``1h``, ``7d``, ``1w`` or a plain number of seconds."""
    match = _TTL_RE.fullmatch(text.strip().lower())
    if match is None or int(match["count"]) == 0:
        raise InvalidInput(
            "--ttl",
            "must be a positive number of seconds, or one with a unit: 30s, 10m, 1h, 7d, 1w",
        )
    return int(match["count"]) * _UNIT_SECONDS[match["unit"]]


def read_secret(file: Path | None) -> Payload:
    """The secret to share: ``file``, else standard input if piped, else a hidden prompt.

    Piped bytes that are UTF-8 are sent as text, others as a file without a name. Raises
    ``InvalidInput`` for an empty secret or a file that cannot be read.
    """
    if file is not None:
        try:
            content = file.read_bytes()
        except OSError as exc:
            raise InvalidInput("--file", f"cannot be read ({exc.strerror})") from None
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        payload = Payload(content, is_file=True, name=file.name, mime=mime)
    elif sys.stdin.isatty():
        payload = Payload(_ask("Secret (input is hidden): ").encode("utf-8"))
    else:
        content = sys.stdin.buffer.read()
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            payload = Payload(content, is_file=True)
        else:
            payload = Payload(content)
    if not payload.content:
        raise InvalidInput("secret", "is empty; there is nothing to share")
    return payload


def sender_passphrase(*, ask: bool, file: Path | None) -> str | None:
    """The passphrase to protect a new secret with, or ``None`` for none.

    In order: ``file`` (one trailing newline dropped), ``BURNLINK_PASSPHRASE``, and with ``ask``
    a prompt on the terminal, twice.
    """
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise InvalidInput("--passphrase-file", "cannot be read as UTF-8 text") from None
        return _non_empty(text.removesuffix("\n").removesuffix("\r"), "--passphrase-file")
    if from_env := os.environ.get(PASSPHRASE_ENV):
        return from_env
    if not ask:
        return None
    if not has_terminal():
        raise InvalidInput(
            "--passphrase",
            f"there is no terminal to ask on; set {PASSPHRASE_ENV} or use --passphrase-file",
        )
    for _ in range(PROMPT_TRIES):
        first = _non_empty(_ask("Passphrase: "), "passphrase")
        if _ask("Passphrase again: ") == first:
            return first
        click.echo("The two passphrases differ; try again.", err=True)
    raise InvalidInput("passphrase", "the two entries differed every time")


def receiver_passphrase() -> str | None:
    """The passphrase to open a protected secret: ``BURNLINK_PASSPHRASE``, else asked on the
    terminal, else ``None`` when there is no terminal.
    """
    if from_env := os.environ.get(PASSPHRASE_ENV):
        return from_env
    if not has_terminal():
        return None
    return _non_empty(_ask("Passphrase: "), "passphrase")


OTP_ENV = "BURNLINK_OTP"


def verification_code(given: str | None, hint: str) -> str | None:
    """The recipient's one-time code: ``--otp``, else ``BURNLINK_OTP``, else asked on the
    terminal (saying where it was mailed), else ``None`` when there is no terminal."""
    code = given or os.environ.get(OTP_ENV)
    if code is None and has_terminal():
        click.echo(f"A verification code was mailed to {hint}.", err=True)
        code = _ask("Code: ")
    if code is not None and not re.fullmatch(r"[0-9]{6}", code.strip()):
        raise InvalidInput("otp", "must be the 6 digits of the mailed code")
    return code.strip() if code is not None else None


def has_terminal() -> bool:
    """Whether a prompt can reach the user, even with standard input piped."""
    if os.name == "nt":  # pragma: no cover - getpass reads the console there
        return sys.stdin.isatty()
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _ask(prompt: str) -> str:
    # getpass reads /dev/tty (not stdin) and writes the prompt there, so stdout stays clean.
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise click.Abort from None


def _non_empty(value: str, name: str) -> str:
    if not value:
        raise InvalidInput(name, "is empty")
    return value
