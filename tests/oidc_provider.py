"""A real OpenID Connect provider for the sign-in tests: ``oidc-provider`` on Node.js.

``OidcProvider`` starts ``tests/oidc/provider/provider.mjs`` (the certified ``oidc-provider``
package, pinned in that folder's ``package-lock.json``; ``bash scripts/test`` installs it with
``npm ci``) on a free port of 127.0.0.1, waits for its discovery document and stops it, with
its whole process group, on exit::

    with OidcProvider(["http://127.0.0.1:8000/auth/callback"]) as provider:
        callback = provider.sign_in(http, authorize_url, "alice")

It has two confidential clients (``client_secret_basic``, the same redirect URIs, both allowed
the code and device grants; the second one, ``other_client_id``, is there for ID tokens issued
to another audience), PKCE (S256) required, RP-initiated logout and the device authorization
grant (RFC 8628). Its users are ``USERS``: alice signs in with a password and a one-time code
(``amr`` ``["pwd", "otp"]``, ``acr`` ``urn:burnlink:mfa``), bob and carol with a password only
(``acr`` ``urn:burnlink:pwd``). ID tokens carry ``email``, ``email_verified`` and ``groups``
for the scopes ``email`` and ``groups``, and always ``amr``, ``acr`` and ``auth_time``.
Sessions, grants and codes live in the Node process: a ``restart`` (as for a key rotation)
forgets them, as a provider that lost its state would.

A test drives the provider's pages with ``sign_in`` (authorization request to the RP's
callback URL), ``approve_device`` (a user code) and ``sign_out`` (an end-session URL) over an
``httpx.Client`` that plays the browser, or with ``fill_sign_in_form`` in a Playwright page;
``otp(user)`` is the code a user would type now, and ``backchannel`` is a cookie-less client
for the RP's own calls (token, JWKS). ``log_tail()`` shows what the provider logged, among it
``oidc-provider``'s notice that it wants Node.js 22 (it works on the 20 Debian ships here).

Without Node.js or the installed package, ``require_node`` skips the calling test, or fails it
when ``CI=true``, like the other services in ``tests/services.py``.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.servers import START_TIMEOUT, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

PROVIDER_DIR = Path(__file__).parent / "oidc" / "provider"
HOST = "127.0.0.1"
MIN_NODE_MAJOR = 20
STOP_TIMEOUT = 5.0
# Generous: on a 2-core host running the suite's workers, Node may wait seconds for a core.
HTTP_TIMEOUT = 30.0
MFA_ACR = "urn:burnlink:mfa"
PASSWORD_ACR = "urn:burnlink:pwd"
# Redirects and pages one sign-in may pass through before it reaches the relying party.
MAX_STEPS = 12


@dataclass(frozen=True)
class OidcUser:
    """A user of the test provider, with what they sign in with and the claims they get."""

    id: str
    name: str
    email: str
    email_verified: bool
    groups: tuple[str, ...]
    password: str
    amr: tuple[str, ...]
    acr: str
    # Base32 TOTP secret (RFC 6238: SHA-1, 30 s, 6 digits) of a user with a second factor.
    totp_secret: str | None = None

    def as_config(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "email_verified": self.email_verified,
            "groups": list(self.groups),
            "password": self.password,
            "amr": list(self.amr),
            "acr": self.acr,
            "totp_secret": self.totp_secret,
        }


USERS: dict[str, OidcUser] = {
    user.id: user
    for user in (
        OidcUser(
            id="alice",
            name="Alice Admin",
            email="alice@example.com",
            email_verified=True,
            groups=("engineering", "admins"),
            password="alice-correct-horse",
            amr=("pwd", "otp"),
            acr=MFA_ACR,
            totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        ),
        OidcUser(
            id="bob",
            name="Bob Sales",
            email="bob@example.com",
            email_verified=True,
            groups=("sales",),
            password="bob-battery-staple",
            amr=("pwd",),
            acr=PASSWORD_ACR,
        ),
        OidcUser(
            id="carol",
            name="Carol Partner",
            email="carol@partner.test",
            email_verified=True,
            groups=(),
            password="carol-tr0ub4dor",
            amr=("pwd",),
            acr=PASSWORD_ACR,
        ),
    )
}


class ProviderError(Exception):
    """The test provider did not start, or a sign-in through it did not go as expected."""


def totp(secret: str, at: float | None = None) -> str:
    """The RFC 6238 one-time code of ``secret`` at ``at`` (now by default)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), "sha1").digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def _skip_or_fail(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_node() -> str:
    """Return the ``node`` to run; skip the calling test (fail on CI) when it cannot run."""
    node = shutil.which("node")
    if node is None:
        _skip_or_fail(
            f"node {MIN_NODE_MAJOR}+ is not installed (apt-get install nodejs npm): "
            "the tests against a real OpenID provider need it"
        )
    version = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        _skip_or_fail(f"node {MIN_NODE_MAJOR}+ is needed for the OpenID provider, not {version}")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        _skip_or_fail(
            f"the test OpenID provider is not installed: run `npm ci` in {PROVIDER_DIR} "
            "(bash scripts/test does)"
        )
    return node


_POLL_LINE = re.compile(
    r"provider\.mjs: device poll gap_ms=(?P<gap>first|\d+) (?P<answer>slow_down|passed)"
)
"""The line the provider logs for each device-code poll (``devicePolling`` in provider.mjs)."""


def _run_pid() -> int | None:
    """The pid of the pytest run's main process when this is a pytest-xdist worker (its
    parent), else ``None``.

    A run killed by SIGTERM or SIGKILL does not take its workers with it: a worker runs on as
    an orphan until its current test ends, and so, through the worker's stdin pipe, would the
    provider. The provider watches this pid too and stops once it is gone.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    parent = os.getppid()
    return parent if parent > 1 else None


def _new_key() -> dict[str, Any]:
    kid = secrets.token_urlsafe(12)
    key = RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )
    return dict(key.as_dict(private=True))


@dataclass
class _Form:
    id: str | None
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects each form's action and its hidden inputs' values (enough for these pages)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                _Form(
                    id=attributes.get("id"),
                    action=attributes.get("action", ""),
                    method=attributes.get("method", "get").lower(),
                )
            )
        elif tag == "input" and self.forms and attributes.get("type") == "hidden":
            self.forms[-1].fields[attributes.get("name", "")] = attributes.get("value", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _page(response: httpx.Response) -> _FormParser:
    parser = _FormParser()
    parser.feed(response.text)
    return parser


class OidcProvider:
    """A running ``oidc-provider`` with the test's clients, the ``USERS`` and its own keys.

    Construct it (the issuer is known from then on), then enter it: ``with`` starts Node and
    waits until discovery answers; leaving stops it. Raises ``ProviderError`` when Node does
    not start; call ``require_node()`` first to skip instead where Node is missing.
    """

    def __init__(
        self,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] | None = None,
        *,
        id_token_ttl: int = 300,
        device_code_ttl: int = 600,
        device_interval: int | None = None,
        device_min_poll: float | None = None,
    ) -> None:
        self.redirect_uris = list(redirect_uris)
        self.post_logout_redirect_uris = list(post_logout_redirect_uris or [])
        self.id_token_ttl = id_token_ttl
        self.device_code_ttl = device_code_ttl
        self.device_interval = device_interval
        """The polling interval the device authorization answer names (``None``: none)."""
        self.device_min_poll = device_min_poll
        """Seconds a device code must wait between polls, else ``slow_down`` (``None``: any)."""
        self.client_id = "burnlink-test"
        self.client_secret = secrets.token_urlsafe(32)
        self.other_client_id = "other-app"
        self.other_client_secret = secrets.token_urlsafe(32)
        self.users = USERS
        self.port = free_port()
        self.issuer = f"http://{HOST}:{self.port}"
        self._keys: list[dict[str, Any]] = [_new_key()]
        self._cookie_keys = [secrets.token_urlsafe(32)]
        self._process: subprocess.Popen[bytes] | None = None
        # For server-to-server calls (discovery, token, JWKS), as a relying party makes them:
        # no browser cookies. One client, since a new one per call costs ~0.1 s.
        self.backchannel = httpx.Client(timeout=HTTP_TIMEOUT)
        self._workdir: Path | None = None

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self.backchannel.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _config(self) -> dict[str, Any]:
        clients = [
            (self.client_id, self.client_secret, "burnlink (test)"),
            (self.other_client_id, self.other_client_secret, "Another application"),
        ]
        return {
            "host": HOST,
            "port": self.port,
            "id_token_ttl": self.id_token_ttl,
            "device_code_ttl": self.device_code_ttl,
            "device_interval": self.device_interval,
            "device_min_poll": self.device_min_poll,
            "acr_values": [MFA_ACR, PASSWORD_ACR],
            "clients": [
                {
                    "client_id": client_id,
                    "client_secret": secret,
                    "client_name": name,
                    "redirect_uris": self.redirect_uris,
                    "post_logout_redirect_uris": self.post_logout_redirect_uris,
                }
                for client_id, secret, name in clients
            ],
            "users": [user.as_config() for user in self.users.values()],
            "jwks": {"keys": self._keys},
            "cookie_keys": self._cookie_keys,
            "watch_pid": _run_pid(),
        }

    def start(self) -> None:
        """Start Node and wait until the discovery document answers.

        Node stops by itself when this process dies (the end of its stdin, a pipe only this
        process holds) and, under pytest-xdist, when the run's main process does
        (``watch_pid``): a killed run leaves its workers running until their test ends.
        """
        if self._process is not None:
            raise ProviderError("the provider is already running")
        node = shutil.which("node")
        if node is None:
            raise ProviderError("node is not installed; call require_node() first")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="burnlink-oidc-"))
        env = {**os.environ, "OIDC_PROVIDER_CONFIG": json.dumps(self._config())}
        env.pop("NODE_OPTIONS", None)
        with (self._workdir / "provider.log").open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                [node, str(PROVIDER_DIR / "provider.mjs")],
                cwd=PROVIDER_DIR,
                env=env,
                # Node stops when this pipe closes: when this process dies without stop().
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_for_discovery()

    def _wait_for_discovery(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                break
            try:
                if self.backchannel.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ProviderError(f"the OpenID provider did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop Node and everything it started (its process group)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
        # Whatever is left of the group (Node stuck, or anything it started) goes now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self, *, rotate_keys: bool = True, keep_old: bool = False) -> None:
        """Restart on the same issuer; with ``rotate_keys``, sign with a new key from now on.

        ``keep_old`` keeps publishing the previous keys in the JWKS (a rollover); without it
        they are gone (a key withdrawn at once). Sessions and codes of the old run are lost.
        """
        self.stop()
        if rotate_keys:
            self._keys = [_new_key(), *(self._keys if keep_old else [])]
        self.start()

    @property
    def log_path(self) -> Path | None:
        """The provider's log (stdout and stderr of every run), once it was started."""
        return None if self._workdir is None else self._workdir / "provider.log"

    def device_polls(self) -> list[tuple[float | None, bool]]:
        """With ``device_min_poll``: each device-code poll so far, as (seconds since the same
        code's previous poll, or ``None`` for its first; whether it was answered
        ``slow_down``), read from the provider's log."""
        if self.log_path is None or not self.log_path.exists():
            return []
        polls: list[tuple[float | None, bool]] = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _POLL_LINE.fullmatch(line)
            if match is not None:
                gap = None if match["gap"] == "first" else int(match["gap"]) / 1000
                polls.append((gap, match["answer"] == "slow_down"))
        return polls

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the provider logged (for failure messages)."""
        if self.log_path is None:
            return "(not started)"
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def kids(self) -> list[str]:
        """The published key ids, the signing one first."""
        return [str(key["kid"]) for key in self._keys]

    def discovery(self) -> dict[str, Any]:
        """The provider's discovery document."""
        response = self.backchannel.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def otp(self, user: str) -> str:
        """The one-time code ``user`` would type now (their second factor)."""
        secret = self.users[user].totp_secret
        if secret is None:
            raise ProviderError(f"{user} has no second factor")
        return totp(secret)

    # -- driving the provider's pages ---------------------------------------------------------

    def _is_provider(self, url: str) -> bool:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.issuer

    def _login_fields(self, user: str) -> dict[str, str]:
        person = self.users[user]
        fields = {"user": person.id, "password": person.password, "otp": ""}
        if person.totp_secret is not None:
            fields["otp"] = self.otp(user)
        return fields

    def _drive(
        self,
        http: httpx.Client,
        response: httpx.Response,
        user: str,
        *,
        device: bool,
        allow: bool = True,
    ) -> str | None:
        """Walk the provider's redirects and pages; return the first URL off the provider.

        Fills the sign-in form as ``user`` and, for ``device``, confirms the device (or, with
        ``allow=False``, denies it); returns None when the device flow ends on the provider's
        own page.
        """
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if not self._is_provider(location):
                    return location
                response = http.get(location, follow_redirects=False)
                continue
            page = _page(response)
            forms = {form.id or urlsplit(form.action).path: form for form in page.forms}
            login = next((f for f in page.forms if f.action.endswith("/login")), None)
            if response.status_code == 200 and login is not None:
                response = http.post(
                    urljoin(str(response.url), login.action),
                    data=self._login_fields(user),
                    follow_redirects=False,
                )
                continue
            if device and response.status_code == 200 and "op.deviceConfirmForm" in forms:
                form = forms["op.deviceConfirmForm"]
                response = http.post(
                    urljoin(str(response.url), form.action),
                    data=form.fields if allow else {**form.fields, "abort": "yes"},
                    follow_redirects=False,
                )
                if not allow and response.status_code != 302:
                    return None  # the provider's own "denied" page
                continue
            if response.status_code == 200 and page.title == "Submitting Callback":
                # The package's self-submitting form: here, ending the previous user's session
                # when another one signs in.
                form = page.forms[0]
                target = urljoin(str(response.url), form.action)
                if not self._is_provider(target):
                    raise ProviderError("response_mode=form_post is not supported by sign_in")
                response = http.post(target, data=form.fields, follow_redirects=False)
                continue
            if device and response.status_code == 200 and page.title == "Device signed in":
                return None
            raise ProviderError(
                f"the provider answered {response.status_code} ({page.title!r}) at "
                f"{urlsplit(str(response.url)).path}: {response.text[:500]}"
            )
        raise ProviderError(f"sign-in took more than {MAX_STEPS} steps")

    def sign_in(self, http: httpx.Client, authorize_url: str, user: str) -> str:
        """Sign ``user`` in through the provider's form; return the redirect to the RP.

        ``authorize_url`` is the authorization request the relying party made. The returned
        URL (the RP's callback with ``code``, ``state`` and ``iss``, or with ``error``) is NOT
        requested. When ``http`` already holds a provider session and the request does not ask
        for a new sign-in (``prompt=login``, ``max_age``), the provider answers for that
        session's user without showing the form.
        """
        if user not in self.users:
            raise ProviderError(f"no such test user: {user}")
        response = http.get(authorize_url, follow_redirects=False)
        location = self._drive(http, response, user, device=False)
        if location is None:  # only the device flow ends on the provider
            raise ProviderError("the sign-in ended on the provider")
        return location

    def fill_sign_in_form(self, page: Page, user: str) -> None:
        """In a browser showing the provider's sign-in form, sign in as ``user``.

        Types the user, the password and, for a user with a second factor, the one-time code
        into the fields labelled "User", "Password" and "One-time code", and presses "Sign in".
        """
        person = self.users[user]
        page.get_by_label("User", exact=True).fill(person.id)
        page.get_by_label("Password", exact=True).fill(person.password)
        if person.totp_secret is not None:
            page.get_by_label("One-time code").fill(self.otp(user))
        page.get_by_role("button", name="Sign in").click()

    def approve_device(
        self, http: httpx.Client, user_code: str, user: str, *, allow: bool = True
    ) -> None:
        """Enter ``user_code`` on the provider's device page, sign in as ``user``, allow it
        (or deny it, with ``allow=False``)."""
        if user not in self.users:
            raise ProviderError(f"no such test user: {user}")
        entry = http.get(f"{self.issuer}/device", follow_redirects=False)
        form = next((f for f in _page(entry).forms if f.id == "op.deviceInputForm"), None)
        if form is None:
            raise ProviderError(f"no device code form: {entry.status_code} {entry.text[:300]}")
        response = http.post(
            urljoin(str(entry.url), form.action),
            data={**form.fields, "user_code": user_code},
            follow_redirects=False,
        )
        location = self._drive(http, response, user, device=True, allow=allow)
        if location is not None:
            raise ProviderError(f"the device flow left the provider for {location}")

    def sign_out(self, http: httpx.Client, end_session_url: str) -> str | None:
        """Confirm an RP-initiated logout; return the redirect to the RP, or None.

        None means the provider ended on its own "signed out" page (no
        ``post_logout_redirect_uri``). The returned URL is not requested.
        """
        response = http.get(end_session_url, follow_redirects=False)
        page = _page(response)
        if response.status_code != 200 or not page.forms:
            raise ProviderError(f"no logout form: {response.status_code} {response.text[:300]}")
        form = page.forms[0]
        response = http.post(
            urljoin(str(response.url), form.action),
            data={**form.fields, "logout": "yes"},
            follow_redirects=False,
        )
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if not self._is_provider(location):
                return location
            response = http.get(location, follow_redirects=False)
        if response.status_code == 200 and _page(response).title == "Signed out":
            return None
        raise ProviderError(f"logout failed: {response.status_code} {response.text[:300]}")
