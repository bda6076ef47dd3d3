"""``burnlink login``: sign in from a terminal and keep the API token it ends in (docs/cli.md).

When the server offers it, the device authorization grant (RFC 8628, through the server's
``POST /api/v1/auth/device`` routes): the verification address and the user code go to
stderr, the CLI polls at the server's interval (5 more seconds after each ``slow_down``)
until the user approved, denied, the code expired, or ``--timeout`` passed. With ``--token``
or ``--paste``, or when the server does not offer the device flow, a token made on the web
page is taken instead (``burnlink.cli.signin.login``, which checks it with the server).

Either way the token is kept where ``burnlink.cli.signin`` keeps every token: per server in
``credentials.json`` (mode 0600, in a 0700 folder); ``BURNLINK_TOKEN`` overrides it. It is
never printed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, Final

import click

from burnlink.cli.client import LoginDenied, LoginExpired
from burnlink.errors import InvalidInput
from burnlink.identity.tokens import parse_token

__all__ = [
    "DEFAULT_TIMEOUT",
    "device_login",
    "login",
]

DEFAULT_TIMEOUT: Final = 900
"""Seconds ``burnlink login`` waits for the approval (the provider's code usually dies first)."""
SLOW_DOWN: Final = 5
MAX_INTERVAL: Final = 60
HTTP_TIMEOUT: Final = 15.0


def default_name() -> str:
    """The name a new token gets: ``burnlink CLI on <hostname>``."""
    host = "".join(ch for ch in socket.gethostname() if ch.isprintable())[:40] or "this machine"
    return f"burnlink CLI on {host}"


def _post(http: Any, url: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    import httpx

    from burnlink.cli.client import ServerUnavailable

    try:
        response = http.post(url, json=body) if body is not None else http.post(url)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"cannot reach the server at {url} ({exc})") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ServerUnavailable(f"unexpected answer from {url} (HTTP {response.status_code})")
    return response.status_code, answer


def _error(answer: dict[str, Any]) -> tuple[str, str]:
    error = answer.get("error")
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def device_login(
    server: str,
    *,
    name: str,
    timeout: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """The API token of a device sign-in at ``server``; ``None`` when the server does not
    offer the device flow (no sign-in, or a provider without the grant) or cannot start it now
    (the provider is down): the caller then asks for a pasted token."""
    import httpx

    from burnlink.cli.client import USER_AGENT, ServerUnavailable

    base = server.rstrip("/")
    with httpx.Client(
        timeout=HTTP_TIMEOUT, headers={"User-Agent": USER_AGENT}, follow_redirects=False
    ) as http:
        status, answer = _post(http, base + "/api/v1/auth/device", None)
        if status == 404:
            return None
        if status != 200:
            # The provider is down or refuses the grant: a pasted token still works.
            code, message = _error(answer)
            say(f"The device sign-in is not available now ({_clean(message or code)}).")
            return None
        try:
            device_code = str(answer["device_code"])
            user_code = str(answer["user_code"])
            uri = str(answer["verification_uri"])
            complete = answer.get("verification_uri_complete")
            interval = min(max(int(answer.get("interval") or 5), 1), MAX_INTERVAL)
            expires_in = int(answer.get("expires_in") or timeout)
        except (KeyError, TypeError, ValueError):
            raise ServerUnavailable("the server's sign-in answer is malformed") from None
        say(f"To sign in, open {_clean(uri)} and enter the code {_clean(user_code)}")
        if isinstance(complete, str):
            say(f"(or open {_clean(complete)})")
        say("Waiting for the approval...")
        deadline = time.monotonic() + min(timeout, expires_in + interval)
        while True:
            sleep(interval)
            if time.monotonic() > deadline:
                raise LoginExpired(
                    "The sign-in was not approved in time. Run `burnlink login` again."
                )
            status, answer = _post(
                http, base + "/api/v1/auth/device/token", {"device_code": device_code, "name": name}
            )
            if status == 200:
                token = answer.get("token")
                if not isinstance(token, str) or parse_token(token) is None:
                    raise ServerUnavailable("the server's token is malformed")
                return token
            code, message = _error(answer)
            if code == "authorization_pending":
                continue
            if code == "slow_down":
                interval = min(interval + SLOW_DOWN, MAX_INTERVAL)
                continue
            if code == "expired_token":
                raise LoginExpired(message or "The sign-in code expired.")
            if status == 403:
                raise LoginDenied(message or f"The sign-in was refused ({code}).")
            if status == 422:
                raise InvalidInput("name", message or "refused by the server")
            raise ServerUnavailable(
                f"the sign-in failed at the server (HTTP {status}): {message or code}"
            )


def login(server: str, *, token: str | None, paste: bool, name: str | None, timeout: float) -> None:
    """``burnlink login``: see the module docstring."""
    # Imported here: signin imports output, which imports this module's errors.
    from burnlink.cli import signin
    from burnlink.cli.links import parse_server

    def say(text: str) -> None:
        click.echo(text, err=True)

    if token is not None or paste:
        signin.login(server=server, token=token)
        return
    base = parse_server(server)
    found = device_login(base, name=name or default_name(), timeout=timeout, say=say)
    if found is None:
        say("This server does not offer the device sign-in: paste an API token instead.")
        signin.login(server=server, token=None)
        return
    signin.save_token(base, found)
    say(f"Signed in to {base}; the token is kept in {signin.credentials_path()}.")


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)
