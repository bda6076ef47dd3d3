"""HTML routes. Opening a link (``GET /s/{id}``) never consumes it: only an explicit reveal does.

These pages are deliberately plain until the web app lands (it encrypts in the browser); they
embed no ciphertext and run no inline script.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from burnlink import __version__

STATIC_DIR = Path(__file__).parent / "static"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · burnlink</title>"
        '<link rel=stylesheet href="/static/burnlink.css"></head>'
        f"<body><main><h1>{escape(title)}</h1>{body}</main>"
        f"<footer>burnlink {escape(__version__)}</footer></body></html>"
    )


@router.get("/")
async def home() -> HTMLResponse:
    """What burnlink is and how to share from the command line."""
    return _page(
        "burnlink",
        "<p>Share credentials through links that destroy themselves after reading.</p>"
        "<pre>burnlink share &lt; key.txt</pre>"
        '<p>See the <a href="/docs">API documentation</a>.</p>',
    )


@router.get("/s/{secret_id}")
async def secret_page(secret_id: str) -> HTMLResponse:
    """The page a link opens. It consumes nothing, so link previews cannot burn a secret."""
    return _page(
        "A secret is waiting for you",
        "<p>Opening this page has not revealed or used up the secret. It is revealed only "
        "when you ask for it, and then destroyed.</p>"
        "<p>Reveal it with <code>burnlink get 'FULL-LINK'</code>.</p>",
    )


@router.get("/m/{secret_id}")
async def receipt_page(secret_id: str) -> HTMLResponse:
    """The sender's receipt link."""
    return _page(
        "Receipt",
        "<p>See who opened this secret, or burn it, with "
        "<code>burnlink status 'MANAGE-LINK'</code> and "
        "<code>burnlink burn 'MANAGE-LINK'</code>.</p>",
    )


@router.get("/docs")
async def api_docs() -> HTMLResponse:
    """Swagger UI for ``/openapi.json``, served from the package (no third-party hosts)."""
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>burnlink API</title>"
        '<link rel=stylesheet href="/static/swagger/swagger-ui.css"></head>'
        '<body><div id="swagger-ui"></div>'
        '<script src="/static/swagger/swagger-ui-bundle.js"></script>'
        '<script src="/static/docs.js"></script></body></html>',
        headers={"content-security-policy": DOCS_CSP},
    )


def mount_static(app: FastAPI) -> None:
    """Serve the package's static files and the vendored Swagger UI."""
    app.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
