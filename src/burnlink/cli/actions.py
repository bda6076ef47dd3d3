"""What each command does, once ``main`` has parsed its options.

``main`` imports this module inside the commands, so that ``burnlink --help`` loads neither
cryptography nor httpx; ``serve`` imports the web stack only when it runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import urljoin, urlsplit

import click

from burnlink import __version__
from burnlink.cli import inputs, links, output
from burnlink.cli.client import TIMEOUT, USER_AGENT, ServerUnavailable
from burnlink.errors import InvalidInput

if TYPE_CHECKING:
    import httpx

    from burnlink.sdk import AccessRules, Client, Revealed


def _client(server: str | None = None, token: str | None = None) -> Client:
    """The SDK's client, sending the CLI's ``User-Agent``."""
    from burnlink.sdk import Client

    return Client(server, token=token, user_agent=USER_AGENT)


def share(
    *,
    server: str,
    ttl: str | None,
    views: int | None,
    ask_passphrase: bool,
    passphrase_file: Path | None,
    file: Path | None,
    as_json: bool,
    rules: dict[str, object] | None = None,
    token: str | None = None,
) -> None:
    """Seal the secret here, store the envelope, print the link (and the manage link).

    With an API token (``token``, else the one ``burnlink login`` kept) the secret is created
    as its user.

    ``rules`` are the access rules sent along (``AccessRules``: ``allowed_ips``,
    ``allowed_countries``, ``denied_countries``, ``recipient_email``, …); the server
    validates them.
    """
    base = links.parse_server(server)
    seconds = inputs.parse_ttl(ttl) if ttl is not None else None
    payload = inputs.read_secret(file)
    passphrase = inputs.sender_passphrase(ask=ask_passphrase, file=passphrase_file)
    from burnlink.cli.signin import token_for

    with _client(base, token_for(base, token)) as client:
        shared = client.share(
            payload,
            ttl=seconds,
            views=views,
            passphrase=passphrase,
            **cast("AccessRules", rules or {}),
        )
    if as_json:
        output.print_json(
            {
                "url": shared.url,
                "manage_url": shared.manage_url,
                "expires_at": shared.expires_at,
                "id": shared.id,
                "max_views": shared.max_views,
            }
        )
        return
    click.echo(shared.url)
    views_text = "1 view" if shared.max_views == 1 else f"{shared.max_views} views"
    click.echo(f"Expires at {shared.expires_at} or after {views_text}.", err=True)
    if passphrase is not None and passphrase_file is None and not ask_passphrase:
        click.echo(f"Protected with the passphrase in {inputs.PASSPHRASE_ENV}.", err=True)
    click.echo(f"Manage link (status, burn; keep it private): {shared.manage_url}", err=True)


def token_for_link(base: str, token: str | None, token_server: str | None) -> str | None:
    """The API token that may go to ``base``, the server a link names: ``token`` when typed
    for this command (``token_server`` ``None``), or when it came from ``BURNLINK_TOKEN`` and
    ``BURNLINK_SERVER`` (``token_server``) is that same server; else the one ``login`` kept
    for ``base``. A link can name any server: the environment's token, meant for one server,
    never goes to another."""
    from burnlink.cli.signin import saved_token

    if token is not None:
        if token_server is None:
            return token
        try:
            if links.parse_server(token_server) == base:
                return token
        except InvalidInput:
            pass  # a malformed BURNLINK_SERVER names no server
    return saved_token(base)


def get(
    *,
    link: str,
    key: str | None,
    output_path: Path | None,
    as_json: bool,
    otp: str | None = None,
    token: str | None = None,
    token_server: str | None = None,
) -> None:
    """Take one view, open it here, and write the exact content to stdout or a file.

    For a passphrase-protected secret the passphrase comes from ``BURNLINK_PASSPHRASE`` or
    the terminal. For a secret bound to a recipient's address, the first attempt has the
    server mail a code (unless ``otp`` or ``BURNLINK_OTP`` gives one); it is then asked on
    the terminal.

    For a secret bound to recipients (the server answers ``login_required``), the reveal is
    sent again with the user's API token (``token_for_link``); other secrets never see it.
    Without one, ``LoginRequired`` (exit 14). ``token_server``: the server ``token`` is for,
    when it came from the environment rather than the command line.
    """
    parsed = links.parse_secret_link(link, key)
    if output_path is not None:
        _check_writable(output_path)
    with _client() as client:
        revealed = client.reveal(
            link,
            key=key,
            passphrase=inputs.receiver_passphrase,
            otp=otp if otp else lambda: os.environ.get(inputs.OTP_ENV),
            ask_otp=lambda hint: inputs.verification_code(None, hint),
            token=lambda: token_for_link(parsed.base, token, token_server),
        )
    write_revealed(revealed, output_path=output_path, as_json=as_json)


def write_revealed(revealed: Revealed, *, output_path: Path | None, as_json: bool) -> None:
    """What ``get`` (and ``request``) prints of a revealed secret: JSON, a new private file,
    or the exact bytes on stdout."""
    if as_json:
        output.print_json(revealed.answer())
    elif output_path is not None:
        _write_private(output_path, revealed.content)
        click.echo(f"Wrote {len(revealed.content)} bytes to {output_path}.", err=True)
    else:
        stdout = sys.stdout.buffer
        stdout.write(revealed.content)
        # Exact bytes for pipes and files; on a terminal, keep the prompt off the secret's line.
        if sys.stdout.isatty() and not revealed.content.endswith(b"\n"):
            stdout.write(b"\n")
        stdout.flush()


def status(*, link: str, as_json: bool) -> None:
    """Print the receipt of a secret."""
    with _client() as client:
        receipt = client.status(link)
    if as_json:
        output.print_json(output.receipt_json(receipt))
    else:
        click.echo(output.receipt_text(receipt))


def burn(*, link: str) -> None:
    """Destroy a secret now."""
    with _client() as client:
        client.burn(link)
    click.echo("Burned: the secret is destroyed and its link no longer works.")


def serve(
    *,
    host: str | None,
    port: int | None,
    store: str | None,
    workers: int | None,
    base_url: str | None,
) -> None:
    """Check the settings and the store, then run the server until it is stopped."""
    import asyncio
    from functools import partial
    from typing import cast

    import uvicorn

    from burnlink.config import load_settings
    from burnlink.store import redact_url
    from burnlink.web.connections import (
        ConnectionLimits,
        LimitedHttpProtocol,
        connection_cap,
        raise_open_file_limit,
    )

    overrides = {
        "host": host,
        "port": port,
        "store": store,
        "workers": workers,
        "base_url": base_url,
    }
    settings = load_settings(**overrides)
    asyncio.run(_check_store(settings.store, settings.receipt_days))
    if settings.sign_in:
        settings.oidc_secret()  # an unreadable secret file stops here, with one line
    # Every worker process builds its own settings from the environment: hand them ours.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"BURNLINK_{name.upper()}"] = str(value)
    host_text = f"[{settings.host}]" if ":" in settings.host else settings.host
    click.echo(
        f"burnlink {__version__} listening on http://{host_text}:{settings.port}"
        f" with {settings.workers} worker{'s' if settings.workers != 1 else ''};"
        f" store {redact_url(settings.store)}",
        err=True,
    )
    if settings.base_url:
        click.echo(f"Links use {settings.public_base()}", err=True)
    # Worker processes inherit the raised limit. Below the cap, accept() would fail with
    # EMFILE and the server would stop answering anyone, /healthz included.
    open_files = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        click.echo(
            f"Warning: the open-file limit ({open_files}) allows {cap} connections per worker,"
            f" not BURNLINK_MAX_CONNECTIONS={settings.max_connections}; raise it (ulimit -n,"
            " LimitNOFILE=)",
            err=True,
        )
    limits = ConnectionLimits.from_settings(settings, max_connections=cap)
    # uvicorn calls `http` with its own four arguments; the partial carries the limits, and
    # pickles into worker processes.
    protocol = cast("type[asyncio.Protocol]", partial(LimitedHttpProtocol, limits=limits))
    try:
        uvicorn.run(
            "burnlink.web.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            proxy_headers=False,
            server_header=False,
            access_log=False,  # middleware.Edge writes the one line per request
            http=protocol,
        )
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ServerUnavailable("the server could not start; see the log above") from None
        raise


def config_check(*, as_json: bool) -> None:
    """Print the effective settings, secrets masked; a ConfigError reaches the exit-code table."""
    from burnlink.config import load_settings

    settings = load_settings()
    if settings.sign_in:
        settings.oidc_secret()  # the secret file must be readable
    values = settings.masked()
    if as_json:
        # A masked secret prints as its mask, as in the text form.
        output.print_json({name: _json_value(value) for name, value in values.items()})
        return
    teams: dict[str, dict[str, object]] = values.pop("teams")  # type: ignore[assignment] # Settings._team_rules
    for name, value in values.items():
        click.echo(f"BURNLINK_{name.upper()} = {value if value is not None else '(unset)'}")
    # The teams as the config file writes them; each with only the rules it sets.
    for team, rules in teams.items():
        shown = ", ".join(f"{key} = {json.dumps(value)}" for key, value in rules.items())
        bare = re.fullmatch(r"[A-Za-z0-9_-]+", team) is not None
        click.echo(f"[teams.{team if bare else json.dumps(team)}] {shown or '(no rules)'}")


def _json_value(value: object) -> object:
    from pydantic import SecretStr

    return str(value) if isinstance(value, SecretStr) else value


async def _check_store(url: str, receipt_days: int) -> None:
    # Fail here, with one line and exit code 7 or 5, rather than inside uvicorn's start-up.
    from datetime import timedelta

    from burnlink.store import open_store

    opened = await open_store(url, retention=timedelta(days=receipt_days))
    await opened.aclose()


def _check_writable(path: Path) -> None:
    # Checked before the view is taken: a secret that cannot be written would be lost.
    parent = path.parent
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InvalidInput("--output", "is not a writable file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InvalidInput("--output", "is not a writable file path")


def _write_private(path: Path, content: bytes) -> None:
    # Readable by the owner only, like ssh keys: the content is a secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
    except OSError as exc:
        raise InvalidInput(
            "--output", f"cannot be written ({exc.strerror}); the view was used"
        ) from None


# --- verify-site -------------------------------------------------------------------------------

# Exit status when the site differs from this package. ExitCode (cli/output.py) has no member
# for it yet; 8 is the next free code (docs/cli.md).
SITE_MISMATCH = output.ExitCode.INTEGRITY
# Ids for the pages that take one; the pages never look them up, so any well-formed id works.
_SAMPLE_ID = "AAAAAAAAAAAAAAAAAAAAAA"
_SITE_PAGES = (
    "/",
    f"/s/{_SAMPLE_ID}",
    f"/m/{_SAMPLE_ID}",
    "/security",
    "/docs",
    "/request",
    f"/r/{_SAMPLE_ID}",
    f"/k/{_SAMPLE_ID}",
)
_LINK_PATH_RE = re.compile(r"(?P<prefix>(?:/[^/]+)*?)/(?P<kind>[sm])/(?P<id>[A-Za-z0-9_-]{22})/?")
_CHECKED_RELS = frozenset({"stylesheet", "modulepreload", "preload"})


@dataclass
class _PageRefs:
    """What one page references: assets with their integrity, and problems in the HTML."""

    assets: dict[str, str | None] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    generator: str | None = None


class _PageParser(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.refs = _PageRefs()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name.lower(): value or "" for name, value in attrs}
        handlers = sorted(name for name in attr if name.startswith("on"))
        if handlers:
            self.refs.problems.append(f"<{tag}> has an inline event handler ({handlers[0]})")
        if tag == "base":
            self.refs.problems.append("has a <base> element")
        if tag == "meta" and attr.get("name") == "generator":
            self.refs.generator = attr.get("content")
        if tag == "script":
            if "src" not in attr:
                self.refs.problems.append("has an inline script")
                return
            url = urljoin(self.page_url, attr["src"])
            self.refs.assets[url] = attr.get("integrity")
            if attr.get("type") == "module":
                self.refs.modules.append(url)
        elif tag == "link" and "href" in attr:
            rels = set(attr.get("rel", "").lower().split())
            if rels & _CHECKED_RELS:
                url = urljoin(self.page_url, attr["href"])
                self.refs.assets[url] = attr.get("integrity")
                if "modulepreload" in rels:
                    self.refs.modules.append(url)
        elif tag == "style" or "style" in attr:
            self.refs.problems.append(f"<{tag}> has an inline style")


@dataclass
class _SiteCheck:
    """The result of ``verify_site``: files checked and one reason per mismatch."""

    base: str
    pages: list[str] = field(default_factory=list)
    files: dict[str, bool] = field(default_factory=dict)
    mismatches: list[tuple[str, str]] = field(default_factory=list)
    server_version: str | None = None

    def mismatch(self, url: str, reason: str) -> None:
        if (url, reason) not in self.mismatches:
            self.mismatches.append((url, reason))
        if url in self.files:
            self.files[url] = False


def verify_site(*, url: str, as_json: bool) -> None:
    """Check that a server sends this package's scripts and styles, with matching integrity."""
    import httpx

    base, pages = _site_pages(url)
    check = _SiteCheck(base)
    with httpx.Client(
        timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    ) as http:
        _verify_pages(http, check, pages)
    _report_site(check, as_json)


def _site_pages(url: str) -> tuple[str, list[str]]:
    # The base of the site, and the pages to check; a link's own page replaces the sample one.
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("URL", "must start with http:// or https:// and name a host")
    match = _LINK_PATH_RE.fullmatch(parts.path)
    prefix = match["prefix"] if match else parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}{prefix}"
    pages = [base + path for path in _SITE_PAGES]
    if match:
        own = f"{base}/{match['kind']}/{match['id']}"
        pages = [own if f"/{match['kind']}/" in page else page for page in pages]
    return base, pages


def _fetch(http: httpx.Client, url: str) -> httpx.Response:
    import httpx

    try:
        return http.get(url)
    except httpx.TimeoutException:
        raise ServerUnavailable(f"{url} did not answer within {TIMEOUT:g} seconds") from None
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"cannot fetch {url} ({type(exc).__name__})") from None


def _verify_pages(http: httpx.Client, check: _SiteCheck, pages: list[str]) -> None:
    from burnlink.assets import asset_file, module_imports, package_assets

    assets = package_assets()
    static_prefix = urlsplit(check.base).path + "/static/"
    origin = urlsplit(check.base)[:2]
    served: dict[str, bytes | None] = {}

    def fetch_asset(asset_url: str) -> bytes | None:
        # The served bytes, once per URL, after checking them against the package's copy.
        if asset_url in served:
            return served[asset_url]
        served[asset_url] = None
        check.files[asset_url] = True
        parts = urlsplit(asset_url)
        if parts[:2] != origin:
            check.mismatch(asset_url, "is on another host")
            return None
        name = parts.path.removeprefix(static_prefix)
        if not parts.path.startswith(static_prefix) or parts.query or name not in assets.integrity:
            check.mismatch(asset_url, f"is not a file of burnlink {__version__}")
            return None
        response = _fetch(http, asset_url)
        if response.status_code != 200:
            check.mismatch(asset_url, f"answered HTTP {response.status_code}")
            return None
        if response.content != asset_file(name).read_bytes():
            check.mismatch(asset_url, "served bytes differ from this package's copy")
        served[asset_url] = response.content
        return response.content

    for page_url in pages:
        check.pages.append(page_url)
        response = _fetch(http, page_url)
        if response.status_code != 200:
            check.mismatch(page_url, f"answered HTTP {response.status_code}")
            continue
        _check_csp(check, page_url, response.headers.get("content-security-policy"))
        parser = _PageParser(page_url)
        parser.feed(response.text)
        refs = parser.refs
        check.server_version = check.server_version or refs.generator
        for problem in refs.problems:
            check.mismatch(page_url, problem)
        for asset_url, integrity in refs.assets.items():
            name = urlsplit(asset_url).path.removeprefix(static_prefix)
            expected = assets.integrity.get(name)
            if not integrity:
                check.mismatch(asset_url, f"has no integrity attribute on {page_url}")
            elif expected is not None and integrity.strip() != expected:
                check.mismatch(asset_url, f"integrity on {page_url} differs from this package's")
            fetch_asset(asset_url)
        # Every module the page's scripts import must be preloaded with its own integrity.
        pending = list(refs.modules)
        while pending:
            module_url = pending.pop()
            source = fetch_asset(module_url)
            if source is None:
                continue
            name = urlsplit(module_url).path.removeprefix(static_prefix)
            for imported in module_imports(source.decode("utf-8", "replace"), name):
                imported_url = urljoin(check.base + "/static/", imported)
                if imported_url not in refs.assets:
                    check.mismatch(imported_url, f"is imported without integrity on {page_url}")
                    pending.append(imported_url)
                    refs.assets[imported_url] = None
                elif imported_url not in served:
                    pending.append(imported_url)


def _check_csp(check: _SiteCheck, page_url: str, policy: str | None) -> None:
    # Inline or evaluated code, or scripts from elsewhere, would run outside any integrity check.
    directives: dict[str, list[str]] = {}
    for directive in (policy or "").split(";"):
        tokens = directive.split()
        if tokens:
            directives.setdefault(tokens[0].lower(), tokens[1:])
    sources = directives.get("script-src", directives.get("default-src"))
    if sources is None:
        check.mismatch(page_url, "sends no Content-Security-Policy restricting scripts")
        return
    extra = [s for s in sources if s.lower() not in ("'self'", "'none'")]
    if extra:
        check.mismatch(page_url, f"its Content-Security-Policy also allows scripts from {extra[0]}")


def _report_site(check: _SiteCheck, as_json: bool) -> None:
    ok = not check.mismatches
    if as_json:
        output.print_json(
            {
                "ok": ok,
                "server": check.base,
                "version": __version__,
                "server_version": _generator_version(check.server_version),
                "pages": check.pages,
                "files": [{"url": url, "ok": good} for url, good in check.files.items()],
                "mismatches": [{"url": url, "reason": reason} for url, reason in check.mismatches],
            }
        )
    else:
        for url, reason in check.mismatches:
            click.echo(output.clean(f"MISMATCH {url}: {reason}"))
        if ok:
            click.echo(
                f"OK: {len(check.pages)} pages and {len(check.files)} files on {check.base}"
                f" match burnlink {__version__}."
            )
        else:
            server_version = _generator_version(check.server_version)
            hint = (
                f" The server says it runs burnlink {server_version}."
                if server_version and server_version != __version__
                else ""
            )
            click.echo(
                output.clean(
                    f"burnlink: {len(check.mismatches)} mismatches: {check.base} does not send"
                    f" the code of burnlink {__version__}.{hint}"
                ),
                err=True,
            )
    if not ok:
        raise click.exceptions.Exit(SITE_MISMATCH)


def _generator_version(generator: str | None) -> str | None:
    if generator and generator.startswith("burnlink "):
        return generator.removeprefix("burnlink ").strip()
    return None
