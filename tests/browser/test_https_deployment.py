"""The deployment of deploy/compose.yaml, built from Debian's packages instead of containers:
nginx terminating TLS for a host name that is not loopback, two ``burnlink`` server processes
behind it on one Redis, and a real Chromium that trusts the test's certificate.

This is where the page meets what production gives it: a secure context for WebCrypto that
is not ``localhost``, links made from ``BURNLINK_BASE_URL``, requests spread over two
processes that must agree on every secret, and client addresses that only the proxy may tell.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, require_browser
from tests.browser.test_web_app import compose, open_link, reveal
from tests.certificates import self_signed
from tests.cli.harness import fragment
from tests.conftest import store_url
from tests.proxies import nginx_tls_proxy, require_nginx
from tests.servers import free_port, server_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HOST = "secrets.example.test"
SPOOFED = "203.0.113.9"


def _certificate(folder: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for ``HOST``: its file, its key's file, and the base64
    SHA-256 of its public key, which is all Chromium is told to trust."""
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    key = self_signed(cert_file, key_file, x509.DNSName(HOST))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert_file, key_file, base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two server processes on one Redis behind nginx with TLS; yields the public base URL
    and the certificate's SPKI hash."""
    require_nginx()
    require_browser()
    store = store_url("redis", request, tmp_path)
    cert, key, spki = _certificate(tmp_path)
    # The public port is chosen first: the processes make their links with it.
    port = free_port()
    env = {
        # nginx reaches the processes from 127.0.0.1; Chromium reaches nginx from ::1.
        "BURNLINK_TRUSTED_PROXIES": "127.0.0.1/32",
        "BURNLINK_PROXY_HEADER": "x-forwarded-for",
        "BURNLINK_BASE_URL": f"https://{HOST}:{port}",
    }
    with (
        server_process(store, tmp_path / "first.log", env=env) as first,
        server_process(store, tmp_path / "second.log", env=env) as second,
        nginx_tls_proxy(tmp_path / "nginx", [first, second], cert, key, port=port),
    ):
        yield f"https://{HOST}:{port}", spki


@pytest.fixture
def trusting_browser(deployment: tuple[str, str]) -> Iterator[Browser]:
    """Chromium that resolves ``HOST`` to ::1 and trusts only the deployment's certificate."""
    from playwright.sync_api import sync_playwright

    _, spki = deployment
    args = [
        *CHROMIUM_ARGS,
        f"--host-resolver-rules=MAP {HOST} [::1]",
        f"--ignore-certificate-errors-spki-list={spki}",
    ]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield launched
        finally:
            launched.close()


def test_a_secret_shared_and_revealed_over_https_through_two_processes(
    deployment: tuple[str, str], trusting_browser: Browser
) -> None:
    base, _ = deployment
    # A client that names itself in X-Forwarded-For must not be believed: only the proxy's
    # own entry (the address Chromium came from, ::1) counts.
    sender_context = trusting_browser.new_context(extra_http_headers={"x-forwarded-for": SPOOFED})
    reader_context = trusting_browser.new_context()
    try:
        sender = sender_context.new_page()
        sender.set_default_timeout(TIMEOUT_MS)
        shared = compose(sender, base, text="db-password: over-tls")
        # WebCrypto runs because this is a secure context, without being localhost.
        assert sender.evaluate("window.isSecureContext && !!crypto.subtle") is True
        assert shared.link.startswith(f"{base}/s/")

        reader = reader_context.new_page()
        reader.set_default_timeout(TIMEOUT_MS)
        open_link(reader, shared.link)
        reveal(reader)
        assert reader.input_value("#secret-text") == "db-password: over-tls"
    finally:
        sender_context.close()
        reader_context.close()

    secret_id = shared.manage.split("/m/")[1].split("#")[0]
    answer = httpx.get(
        f"{base.replace(HOST, '127.0.0.1')}/api/v1/secrets/{secret_id}/receipt",
        headers={"authorization": f"Bearer {fragment(shared.manage)}", "host": base[8:]},
        verify=False,  # noqa: S501 - the test's own self-signed certificate, on loopback
    )
    assert answer.status_code == 200, answer.text
    addresses = {event["type"]: event["ip"] for event in answer.json()["events"]}
    assert addresses["created"] == "::1"
    assert addresses["viewed"] == "::1"
