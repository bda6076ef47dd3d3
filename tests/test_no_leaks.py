"""After a CLI share and get, neither the SQLite files nor the server's log hold plaintext,
the link key, or any token; only digests and ciphertext are stored."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx

from burnlink.crypto import derive_keys
from burnlink.ids import b64url_decode, token_digest
from tests.servers import server_process

PLAINTEXT = b"AKIA-LEAK-MARKER-" + os.urandom(8).hex().encode()
PASSPHRASE = "leak-check-passphrase-" + os.urandom(4).hex()


def burnlink(*args: str, stdin: bytes = b"", env: dict[str, str]) -> bytes:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "burnlink", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
        check=True,
    )
    return result.stdout


def needles(link: str, manage_link: str) -> dict[str, bytes]:
    """Every form in which secret material could leak."""
    key = b64url_decode(link.rsplit("#", 1)[1], field="key")
    manage = b64url_decode(manage_link.rsplit("#", 1)[1], field="token")
    access = derive_keys(key).access_token
    return {
        "plaintext": PLAINTEXT,
        "passphrase": PASSPHRASE.encode(),
        "key (raw)": key,
        "key (text)": link.rsplit("#", 1)[1].encode(),
        "manage token (raw)": manage,
        "manage token (text)": manage_link.rsplit("#", 1)[1].encode(),
        "access token (raw)": access,
        "access token (base64url)": base64.urlsafe_b64encode(access).rstrip(b"="),
    }


def test_sqlite_files_and_server_log_hold_no_secret_material(tmp_path: Path) -> None:
    database = tmp_path / "burnlink.db"
    log = tmp_path / "server.log"
    with server_process(f"sqlite://{database}", log) as base:
        env = {"BURNLINK_SERVER": base, "BURNLINK_PASSPHRASE": PASSPHRASE}
        shared = burnlink("share", "--views", "2", "--json", stdin=PLAINTEXT, env=env)
        created = httpx.Response(200, content=shared).json()
        link, manage_link = created["url"], created["manage_url"]
        stored_while_live = b"".join(p.read_bytes() for p in tmp_path.glob("burnlink.db*"))

        assert burnlink("get", link, env=env) == PLAINTEXT
        assert burnlink("get", link, env=env) == PLAINTEXT
        burnlink("status", manage_link, env=env)

    files = sorted(tmp_path.glob("burnlink.db*"))
    assert database in files
    haystacks = {p.name: p.read_bytes() for p in files}
    haystacks["while live"] = stored_while_live
    haystacks["server log"] = log.read_bytes()
    assert b"POST /api/v1/secrets" in haystacks["server log"]  # the log did record the calls
    for name, needle in needles(link, manage_link).items():
        for where, data in haystacks.items():
            assert needle not in data, f"{name} found in {where}"
    # The stores keep digests of tokens, and those are all they keep.
    manage = b64url_decode(manage_link.rsplit("#", 1)[1], field="token")
    assert token_digest(manage) in stored_while_live
