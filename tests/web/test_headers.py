"""Security headers on every response, ``no-store`` on everything that may carry a secret."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

# A well-formed id that no secret has; a constant, as it lands in test ids, which every
# pytest-xdist worker must collect alike.
SID = "bTkYIbg5BmR79iKfBBjJnA"
REQUESTS = [
    ("GET", "/"),
    ("GET", f"/s/{SID}"),
    ("GET", f"/m/{SID}"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/no/such/route"),
    ("GET", "/static/burnlink.css"),
    ("POST", "/api/v1/secrets"),
    ("PUT", "/api/v1/secrets"),
    ("POST", f"/api/v1/secrets/{SID}/reveal"),
    ("GET", f"/api/v1/secrets/{SID}"),
    ("GET", f"/api/v1/secrets/{SID}/receipt"),
    ("DELETE", f"/api/v1/secrets/{SID}"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
async def test_every_response_carries_security_headers(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(
        method, path, json={"secret": "x"} if method == "POST" else None
    )

    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    if not path.startswith("/static/"):
        assert response.headers["cache-control"] == "no-store"


async def test_secret_responses_are_not_stored(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/secrets", json={"secret": "x"})
    key = created.json()["url"].split("#")[1]
    revealed = await client.post(
        f"/api/v1/secrets/{created.json()['id']}/reveal", json={"key": key}
    )

    assert created.headers["cache-control"] == "no-store"
    assert revealed.status_code == 200
    assert revealed.headers["cache-control"] == "no-store"


async def test_hsts_only_when_served_over_https(client: httpx.AsyncClient) -> None:
    assert "strict-transport-security" not in (await client.get("/")).headers


async def test_docs_page_loads_nothing_from_other_hosts(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")
    assert "<script>" not in page.text  # no inline script: every script has a src
    for asset in [
        "/static/swagger/swagger-ui-bundle.js",
        "/static/swagger/swagger-ui.css",
        "/static/docs.js",
        "/static/docs.css",
    ]:
        assert (await client.get(asset)).status_code == 200
        assert f'"{asset[1:]}" integrity="sha384-' in page.text.replace("./static", "static")


async def test_openapi_lists_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    assert spec["info"]["title"] == "burnlink"
    assert "/api/v1/secrets" in spec["paths"]
    assert "/api/v1/secrets/{secret_id}/reveal" in spec["paths"]


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_hsts_is_sent_when_the_base_url_is_https() -> None:
    from datetime import timedelta

    from burnlink.config import load_settings
    from burnlink.store.memory import MemoryStore
    from burnlink.web.app import create_app

    settings = load_settings(store="memory://", base_url="https://secrets.example.com")
    app = create_app(settings, MemoryStore(retention=timedelta(days=1)))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/")

    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
