"""``burnlink login``, ``logout`` and ``whoami``, and where the CLI keeps the user's API token
(docs/cli.md § Signing in).

For now ``login`` takes a pasted personal API token (made on the server's "my secrets" page),
checks it with ``GET /api/v1/me`` and keeps it, per server, in ``credentials.json`` in the
user's configuration directory (``$XDG_CONFIG_HOME/burnlink`` on Linux), readable by the user
only (mode 0600, in a 0700 directory). ``BURNLINK_TOKEN`` (or ``--token``) wins over the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from burnlink.cli.client import ApiClient, Me
from burnlink.cli.links import parse_server
from burnlink.cli.output import clean, print_json
from burnlink.errors import InvalidApiToken, InvalidInput
from burnlink.identity.tokens import parse_token

__all__ = ["credentials_path", "login", "logout", "saved_token", "token_for", "whoami"]

FILE_NAME = "credentials.json"


def credentials_path() -> Path:
    """The file the tokens are kept in (the user's configuration directory)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("burnlink")) / FILE_NAME


def _read() -> dict[str, str]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise InvalidInput("credentials", f"{path} is unreadable; delete it") from None
    if not isinstance(data, dict):
        raise InvalidInput("credentials", f"{path} is not burnlink's; delete it")
    return {str(k): str(v) for k, v in data.items()}


def _write(tokens: dict[str, str]) -> None:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(tokens, file, indent=2, sort_keys=True)
    os.chmod(temporary, 0o600)  # whatever the umask
    os.replace(temporary, path)


def saved_token(base: str) -> str | None:
    """The token kept for the server at ``base``, if any."""
    return _read().get(base)


def token_for(base: str, given: str | None) -> str | None:
    """``--token``/``BURNLINK_TOKEN`` when given, else the token kept for ``base``."""
    return given or saved_token(base)


def _checked(token: str) -> str:
    token = token.strip()
    if parse_token(token) is None:
        raise InvalidInput("token", "is not a burnlink API token (blk_…, 53 characters)")
    return token


def _who(me: Me) -> str:
    return clean(me.email or me.subject)


def login(*, server: str, token: str | None) -> None:
    """Check ``token`` (asked on the terminal when not given) with the server and keep it."""
    base = parse_server(server)
    if token is None:
        token = click.prompt("Paste an API token", hide_input=True, err=True)
    token = _checked(token)
    with ApiClient(base, api_token=token) as api:
        me = api.me()
    tokens = _read()
    tokens[base] = token
    _write(tokens)
    click.echo(f"Signed in to {base} as {_who(me)}.", err=True)


def logout(*, server: str, token: str | None, revoke: bool) -> None:
    """Forget the token kept for the server; with ``revoke``, revoke it there first."""
    base = parse_server(server)
    tokens = _read()
    current = token or tokens.get(base)
    if revoke and current is not None:
        with ApiClient(base, api_token=current) as api:
            try:
                me = api.me()
                if me.token_id is not None:
                    api.revoke_token(me.token_id)
            except InvalidApiToken:
                pass  # already revoked or expired: nothing left to revoke
    if tokens.pop(base, None) is not None:
        _write(tokens)
    click.echo(f"Signed out of {base}.", err=True)


def whoami(*, server: str, token: str | None, as_json: bool) -> None:
    """Print who the token acts for."""
    base = parse_server(server)
    current = token_for(base, token)
    if current is None:
        raise InvalidApiToken
    with ApiClient(base, api_token=current) as api:
        me = api.me()
    if as_json:
        print_json(
            {"subject": me.subject, "email": me.email, "groups": list(me.groups), "via": me.via}
        )
        return
    click.echo(_who(me))
    if me.groups:
        click.echo("Groups: " + ", ".join(clean(group) for group in me.groups))
