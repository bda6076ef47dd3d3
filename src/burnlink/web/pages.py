"""HTML pages of the web app (docs/web.md): compose, reveal, receipt, requests for a secret
(``/request``, ``/r/{id}``, ``/k/{id}``), how it works and, when sign-in is configured, "My
secrets" (``/me``).

The pages are server-rendered shells; all cryptography runs in the browser (``static/js``),
which talks to the JSON API. Opening a link (``GET /s/{id}``, ``GET /m/{id}``) never touches
the store and the page embeds no ciphertext, so link previews cannot consume a secret.

Every script, stylesheet and message catalogue is referenced with a Subresource Integrity hash
computed once when the app is built. A module's imports are preloaded with their own hashes
(``<link rel=modulepreload integrity=…>``), so the browser checks the whole module graph, not
only the entry script. ``burnlink verify-site`` compares a running server against the same
files (``burnlink.assets``).

UI text lives in ``static/i18n/{language}.json`` (``burnlink.i18n``); a page's language is
chosen by ``burnlink.web.languages`` (``?lang=``, the picker's cookie, ``Accept-Language``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from burnlink import __version__
from burnlink.assets import (
    STATIC_DIR,
    SWAGGER_UI_DIR,
    SWAGGER_UI_FILES,
    SWAGGER_UI_PREFIX,
    Assets,
)
from burnlink.audit.events import AuditEventType
from burnlink.config import Settings
from burnlink.i18n import DEFAULT_LANGUAGE, Catalogue, load_catalogues
from burnlink.policy import MAX_RECIPIENTS
from burnlink.service.requests import MAX_DESCRIPTION
from burnlink.web.json_body import StrictJSONRoute
from burnlink.web.languages import LANGUAGE_COOKIE, LANGUAGE_QUERY, negotiate, request_language
from burnlink.web.schemas import MAX_LABEL_CHARS

TEMPLATES_DIR = Path(__file__).parent / "templates"
I18N_DIR = "i18n"
TTL_PRESETS = (300, 900, 3600, 14400, 86400, 259200, 604800, 2592000)
STYLESHEET = "burnlink.css"
ENTRY_COMPOSE = "js/compose.js"
ENTRY_REVEAL = "js/reveal.js"
ENTRY_RECEIPT = "js/receipt.js"
ENTRY_ME = "js/me.js"
ENTRY_ADMIN = "js/admin.js"
ENTRY_REQUEST = "js/request.js"
ENTRY_ANSWER = "js/answer.js"
ENTRY_OWN = "js/own.js"
LANGUAGE_SCRIPT = "js/language.js"
"""The language picker's script, on every page (the pages' own scripts import it too)."""

__all__ = [
    "DEFAULT_LANGUAGE",
    "Catalogue",
    "Site",
    "load_catalogues",
    "mount_static",
    "negotiate",
    "page_catalogue",
    "render_page",
]

router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)
me_router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)
"""The pages that exist only when sign-in is configured (mounted with the sign-in routes)."""

admin_router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)
"""The admin console's page: only with ``BURNLINK_ADMIN_GROUPS`` set."""


def duration_label(catalogue: Catalogue, seconds: int) -> str:
    """``seconds`` in the largest whole unit: "30 days", "4 hours", "90 seconds"."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return catalogue.t(f"duration.{unit}", count=seconds // size)
    return catalogue.t("duration.seconds", count=seconds)


def ttl_choices(settings: Settings, catalogue: Catalogue) -> list[tuple[int, str, bool]]:
    """The expiry choices: presets within the server's limits, its longest, and its default
    (selected)."""
    seconds = {p for p in TTL_PRESETS if settings.min_ttl <= p <= settings.max_ttl}
    seconds |= {settings.default_ttl, settings.max_ttl}
    return [
        (value, duration_label(catalogue, value), value == settings.default_ttl)
        for value in sorted(seconds)
    ]


def format_bytes(catalogue: Catalogue, size: int) -> str:
    """A size for people, in bytes, KiB or MiB (``max_bytes`` on the compose page)."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return catalogue.t("size.mib", count=size // (1024 * 1024))
    if size >= 1024 and size % 1024 == 0:
        return catalogue.t("size.kib", count=size // 1024)
    return catalogue.t("size.bytes", count=size)


@dataclass(frozen=True, slots=True)
class Site:
    """What the pages need, built once per app: assets, catalogues and templates."""

    assets: Assets
    catalogues: Mapping[str, Catalogue]
    templates: jinja2.Environment

    @classmethod
    def load(cls) -> Site:
        """Scan the package's static files, catalogues and templates."""
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        return cls(Assets.scan(), load_catalogues(), templates)

    def languages(self) -> list[tuple[str, str, str]]:
        """``(tag, name in itself, direction)`` of every catalogue, for the language picker:
        English first, then by tag."""
        tags = sorted(self.catalogues, key=lambda tag: (tag != DEFAULT_LANGUAGE, tag.lower()))
        return [(tag, self.catalogues[tag].name, self.catalogues[tag].direction) for tag in tags]


def _render(
    request: Request, page: str, *, entry: str | None, root: str, **context: Any
) -> HTMLResponse:
    site: Site = request.app.state.site
    settings: Settings = request.app.state.service.settings
    language = request_language(request)
    catalogue = site.catalogues[language]
    html = site.templates.get_template(f"{page}.html").render(
        page=page,
        t=catalogue.t,
        raw=catalogue.raw,
        has=catalogue.messages.__contains__,
        language=language,
        direction=catalogue.direction,
        languages=site.languages(),
        language_query=LANGUAGE_QUERY,
        language_cookie=LANGUAGE_COOKIE,
        language_script=LANGUAGE_SCRIPT,
        root=root,
        version=__version__,
        integrity=site.assets.integrity,
        stylesheet=STYLESHEET,
        messages=f"{I18N_DIR}/{language}.json",
        entry=entry,
        preloads=site.assets.dependencies(entry) if entry else [],
        settings=settings,
        **context,
    )
    return HTMLResponse(
        html,
        headers={"vary": "Accept-Language, Cookie", "content-language": language},
    )


def page_catalogue(request: Request) -> Catalogue:
    """The catalogue of the language this page request is answered in."""
    site: Site = request.app.state.site
    return site.catalogues[request_language(request)]


def render_page(
    request: Request, page: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page without a script of its own (e.g. a refused sign-in), at the site's root."""
    response = _render(request, page, entry=None, root=_root_of(request), **context)
    response.status_code = status_code
    return response


def _root_of(request: Request) -> str:
    # The relative way back to the site's root from this path ("/auth/callback" -> "../").
    depth = request.url.path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


@router.get("/")
async def compose_page(request: Request) -> HTMLResponse:
    """Compose: write a secret or pick a file, encrypt it here, get the link."""
    settings: Settings = request.app.state.service.settings
    catalogue = page_catalogue(request)
    return _render(
        request,
        "compose",
        entry=ENTRY_COMPOSE,
        root="./",
        ttl_choices=ttl_choices(settings, catalogue),
        max_size=format_bytes(catalogue, settings.max_bytes),
        sign_in=settings.sign_in,
        max_label=MAX_LABEL_CHARS,
        max_recipients=MAX_RECIPIENTS,
    )


@router.get("/s/{secret_id}")
async def reveal_page(request: Request, secret_id: str) -> HTMLResponse:
    """The page a link opens. It reads nothing from the store and consumes nothing: the page's
    script asks the API about the secret, and takes a view only when the reader clicks Reveal.
    Every id gets the same page, so the page cannot tell whether a secret exists.
    """
    return _render(request, "reveal", entry=ENTRY_REVEAL, root="../")


@router.get("/m/{secret_id}")
async def receipt_page(request: Request, secret_id: str) -> HTMLResponse:
    """The sender's receipt page (its script reads the receipt with the manage token)."""
    return _render(request, "receipt", entry=ENTRY_RECEIPT, root="../")


@router.get("/request")
async def request_page(request: Request) -> HTMLResponse:
    """Request a secret: the key pair is made in the browser; the page shows the request link
    to send and the requester's own link (which holds the private key)."""
    settings: Settings = request.app.state.service.settings
    catalogue = page_catalogue(request)
    return _render(
        request,
        "request",
        entry=ENTRY_REQUEST,
        root="./",
        ttl_choices=ttl_choices(settings, catalogue),
        max_description=MAX_DESCRIPTION,
        sign_in=settings.sign_in,
    )


@router.get("/r/{request_id}")
async def answer_page(request: Request, request_id: str) -> HTMLResponse:
    """The page a request link opens: checks the key's fingerprint, seals and sends the answer
    in the browser. The same page for every id; it reads nothing from the store."""
    return _render(request, "answer", entry=ENTRY_ANSWER, root="../")


@router.get("/k/{request_id}")
async def own_request_page(request: Request, request_id: str) -> HTMLResponse:
    """The requester's own page: waits for the answer (long poll) and opens it in the
    browser with the private key of its #fragment."""
    return _render(request, "own", entry=ENTRY_OWN, root="../")


@me_router.get("/me")
async def my_secrets_page(request: Request) -> HTMLResponse:
    """*My secrets*: the signed-in user's secrets and API tokens. The page is the same shell for
    everyone; its script asks ``/api/v1/me`` who is signed in and shows an anonymous visitor a
    sign-in link that comes back here."""
    return _render(request, "me", entry=ENTRY_ME, root="./")


@admin_router.get("/admin")
async def admin_page(request: Request) -> HTMLResponse:
    """The admin console. The page is the same shell for everyone; its script asks
    ``/api/v1/admin/session`` whether the visitor is an administrator with a fresh
    second-factor sign-in, and sends them to sign in (again) when not."""
    return _render(
        request,
        "admin",
        entry=ENTRY_ADMIN,
        root="./",
        event_types=[kind.value for kind in AuditEventType],
    )


@router.get("/security")
async def security_page(request: Request) -> HTMLResponse:
    """How burnlink works and what it protects against, in plain words. No script."""
    return _render(request, "security", entry=None, root="./")


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI 5 for ``/openapi.json`` (OpenAPI 3.1), from installed packages only.

    Every file carries its integrity hash, as on the other pages, so ``verify-site`` checks
    this page too; the site's own Content Security Policy applies unchanged.
    """
    site: Site = request.app.state.site
    html = site.templates.get_template("docs.html").render(
        root="./", version=__version__, integrity=site.assets.integrity
    )
    return HTMLResponse(html)


class RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate (by ETag) before each use.

    After an upgrade a page names new integrity hashes; a stale cached script would then be
    refused by the browser, so copies are never used without asking the server.
    """

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.setdefault("cache-control", "no-cache")
        return response


def mount_static(app: FastAPI) -> None:
    """Serve the package's static files and Swagger UI's; load the pages' site."""
    app.state.site = Site.load()
    for name in SWAGGER_UI_FILES:
        app.add_route(f"/static/{SWAGGER_UI_PREFIX}{name}", _swagger_ui_file(name), ["GET", "HEAD"])
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")


def _swagger_ui_file(name: str) -> Callable[[Request], Awaitable[Response]]:
    # One route per file, not a mount of the folder: the package ships more than we serve.
    path = SWAGGER_UI_DIR / name
    media_type = "text/javascript" if name.endswith(".js") else "text/css"

    async def serve(request: Request) -> Response:
        return FileResponse(path, media_type=media_type, headers={"cache-control": "no-cache"})

    return serve
