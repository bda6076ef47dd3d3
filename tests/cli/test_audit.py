"""``burnlink audit verify|export`` on real SQLite and PostgreSQL logs, ``burnlink receipt
verify`` on saved statements and against a running server."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burnlink.audit import open_audit_store
from burnlink.audit.chain import verify
from burnlink.audit.events import AuditEventType
from burnlink.audit.export import read_jsonl
from burnlink.cli.main import main
from burnlink.cli.output import ExitCode
from burnlink.jwk import public_keys_document
from burnlink.models import EndReason
from burnlink.signing import burn_statement, sign_statement
from tests.audit.conftest import KEY, T0, Raw, make_event
from tests.cli.harness import Cli

SECRET_ID = "Qm9vb3Jvb3Jvb3Jvb3Jvbw"
_ENV: dict[str, str | None] = {
    "BURNLINK_AUDIT_KEY": KEY.hex(),
    "BURNLINK_AUDIT_STORE": None,
    "BURNLINK_STORE": None,
    "BURNLINK_CONFIG": None,
}


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A log of six entries (``make_event(0..5)``, one viewed and created alternately)."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("pg_audit_url")

    async def fill() -> None:
        store = await open_audit_store(url, key=KEY)
        for n in range(6):
            kind = AuditEventType.SECRET_CREATED if n % 2 else AuditEventType.SECRET_VIEWED
            await store.append(make_event(n, type=kind))
        await store.aclose()

    asyncio.run(fill())
    return url


def burnlink(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={**_ENV, **(env or {})})


def test_audit_verify_says_ok_for_an_intact_log(log_url: str) -> None:
    result = burnlink("audit", "verify", "--store", log_url)

    assert (result.exit_code, result.stdout) == (0, "OK: 6 entries verified\n")


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        pytest.param(
            ["UPDATE {log} SET event = replace(event, '\"n\":3', '\"n\":9') WHERE seq = 4"],
            "FAILED at seq 4: bad_mac",
            id="edited",
        ),
        pytest.param(
            ["DELETE FROM {log} WHERE seq = 3"],
            "FAILED at seq 3: missing (seq 3..3)",
            id="deleted",
        ),
        pytest.param(
            [
                "UPDATE {log} SET seq = -3 WHERE seq = 3",
                "UPDATE {log} SET seq = 3 WHERE seq = 4",
                "UPDATE {log} SET seq = 4 WHERE seq = -3",
            ],
            "FAILED at seq 3: reordered (belongs at seq 4)",
            id="reordered",
        ),
    ],
)
def test_audit_verify_names_the_first_tampered_entry_and_exits_8(
    log_url: str, tamper: list[str], problem: str
) -> None:
    raw = Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url)
    for sql in tamper:
        raw.execute(sql)

    result = burnlink("audit", "verify", "--store", log_url)
    as_json = burnlink("audit", "verify", "--store", log_url, "--json")

    assert result.exit_code == ExitCode.INTEGRITY
    assert int(ExitCode.INTEGRITY) == 8
    assert result.stdout == problem + "\n"
    assert "does not verify" in result.stderr
    assert json.loads(as_json.stdout)["ok"] is False
    assert json.loads(as_json.stdout)["seq"] == int(problem.split()[3].rstrip(":"))


def test_audit_verify_refuses_a_missing_key_without_creating_one(tmp_path: Path) -> None:
    result = burnlink(
        "audit",
        "verify",
        "--store",
        f"sqlite://{tmp_path / 'audit.db'}",
        env={"BURNLINK_AUDIT_KEY": None, "BURNLINK_KEY_DIR": str(tmp_path / "keys")},
    )

    assert result.exit_code == ExitCode.CONFIG
    assert "BURNLINK_AUDIT_KEY" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_audit_export_jsonl_verifies_and_filters(log_url: str, tmp_path: Path) -> None:
    everything = burnlink("audit", "export", "--store", log_url)
    viewed = burnlink("audit", "export", "--store", log_url, "--type", "secret.viewed")
    window = burnlink(
        "audit",
        "export",
        "--store",
        log_url,
        "--since",
        (T0 + timedelta(minutes=2)).isoformat(),
        "--until",
        "2030-01-01T00:04:00",
    )

    assert everything.exit_code == 0, everything.stderr
    assert verify(read_jsonl(everything.stdout.splitlines()), KEY).ok
    assert len(everything.stdout.splitlines()) == 6
    assert [json.loads(x)["seq"] for x in viewed.stdout.splitlines()] == [1, 3, 5]
    assert [json.loads(x)["seq"] for x in window.stdout.splitlines()] == [3, 4]


def test_audit_export_csv_to_a_private_file(log_url: str, tmp_path: Path) -> None:
    target = tmp_path / "audit.csv"

    result = burnlink(
        "audit", "export", "--store", log_url, "--format", "csv", "--output", str(target)
    )

    assert result.exit_code == 0, result.stderr
    assert "Wrote 6 entries" in result.stderr
    lines = target.read_text().splitlines()
    assert lines[0].startswith("seq,at,type,outcome,secret_hash")
    assert len(lines) == 7
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_audit_export_rejects_a_bad_time(log_url: str) -> None:
    result = burnlink("audit", "export", "--store", log_url, "--since", "last tuesday")

    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "--since" in result.stderr


# -- receipt verify -------------------------------------------------------------------------


def statement_files(tmp_path: Path, how: EndReason = EndReason.VIEWED) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    statement = burn_statement(
        SECRET_ID,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        ended_at=datetime(2030, 1, 1, 0, 5, tzinfo=UTC),
        how=how,
        issuer="https://secrets.example.com",
        key=key,
    )
    document = tmp_path / "statement.json"
    document.write_text(sign_statement(statement, key))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(public_keys_document(key.public_key())))
    return document, keys


def test_receipt_verify_accepts_a_statement_and_a_whole_receipt(tmp_path: Path) -> None:
    document, keys = statement_files(tmp_path)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"id": SECRET_ID, "statement": json.loads(document.read_text())}))

    plain = burnlink("receipt", "verify", str(document), "--key", str(keys), "--id", SECRET_ID)
    whole = burnlink("receipt", "verify", str(receipt), "--key", str(keys), "--json")

    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout.startswith("OK: signed by key ")
    assert f"from {keys} (the keys you gave)" in plain.stdout
    assert "issuer field says https://secrets.example.com; only your keys" in plain.stdout
    assert "ended 2030-01-01T00:05:00.000Z: viewed." in plain.stdout
    assert json.loads(whole.stdout)["how"] == "viewed"


def test_receipt_verify_accepts_a_pem_public_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    statement = burn_statement(
        SECRET_ID,
        created_at=T0,
        ended_at=T0,
        how=EndReason.BURNED,
        issuer="https://x.example",
        key=key,
    )
    document = tmp_path / "statement.json"
    document.write_text(sign_statement(statement, key))
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    assert burnlink("receipt", "verify", str(document), "--key", str(pem)).exit_code == 0


@pytest.mark.parametrize("change", ["how", "key", "id"])
def test_receipt_verify_exits_8_for_a_statement_that_does_not_verify(
    tmp_path: Path, change: str
) -> None:
    document, keys = statement_files(tmp_path)
    args = ["receipt", "verify", str(document), "--key", str(keys)]
    if change == "how":
        document.write_text(document.read_text().replace('"viewed"', '"expired"'))
    elif change == "key":
        (tmp_path / "other").mkdir()
        _, other = statement_files(tmp_path / "other")
        args[-1] = str(other)
    else:
        args += ["--id", "AAAAAAAAAAAAAAAAAAAAAA"]

    result = burnlink(*args)

    assert result.exit_code == ExitCode.INTEGRITY
    assert result.stderr.startswith("burnlink: ")


def test_receipt_verify_fetches_the_keys_from_the_server_named(cli: Cli, tmp_path: Path) -> None:
    link = cli.share_json(b"proof of burn")
    manage = str(link["manage_url"])
    secret_id = str(link["id"])
    token = manage.split("#")[1]
    http = httpx.Client(base_url=cli.server, headers={"authorization": f"Bearer {token}"})
    with http:
        assert http.delete(f"/api/v1/secrets/{secret_id}").status_code == 204
        receipt = http.get(f"/api/v1/secrets/{secret_id}/receipt").json()
    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps(receipt))

    by_url = burnlink("receipt", "verify", str(saved), "--key", cli.server, "--id", secret_id)
    as_json = burnlink("receipt", "verify", str(saved), "--key", cli.server, "--json")

    assert by_url.exit_code == 0, by_url.stderr
    assert ": burned." in by_url.stdout
    keys_url = f"{cli.server}/.well-known/burnlink-keys"
    assert f"from {keys_url} (the keys you gave)" in by_url.stdout
    assert json.loads(as_json.stdout)["verified_with"] == keys_url


def test_receipt_verify_refuses_a_file_that_gives_a_member_twice(tmp_path: Path) -> None:
    document, keys = statement_files(tmp_path)
    signed = document.read_text()
    document.write_text('{"statement": {"forged": 1}, "statement": ' + signed + "}")

    result = burnlink("receipt", "verify", str(document), "--key", str(keys))

    assert result.exit_code == ExitCode.INVALID_INPUT, result.stdout
    assert 'the name "statement" appears twice' in result.stderr


@contextmanager
def serving_keys(document: Mapping[str, object]) -> Iterator[str]:
    """A plain HTTP server on a free local port that publishes ``document`` as its keys."""
    body = json.dumps(document).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_receipt_verify_never_trusts_the_keys_of_the_issuer_the_statement_names(
    cli: Cli, tmp_path: Path
) -> None:
    """A statement forged with anyone's key, naming a server that publishes that key, is not
    verified: the keys must come from the user (a file, or the server they name)."""
    forger = Ed25519PrivateKey.generate()
    with serving_keys(public_keys_document(forger.public_key())) as forger_server:
        statement = burn_statement(
            SECRET_ID,
            created_at=T0,
            ended_at=T0,
            how=EndReason.BURNED,
            issuer=forger_server,
            key=forger,
        )
        forged = tmp_path / "forged.json"
        forged.write_text(sign_statement(statement, forger))

        default = burnlink("receipt", "verify", str(forged), "--id", SECRET_ID)
        trusted = burnlink("receipt", "verify", str(forged), "--key", cli.server)

    assert default.exit_code == ExitCode.INVALID_INPUT, default.stdout
    assert "--key" in default.stderr
    assert "never trusted" in default.stderr
    assert not default.stdout
    assert trusted.exit_code == ExitCode.INTEGRITY, trusted.stdout
    assert "not in the key set" in trusted.stderr


# -- completeness: the state row, entries outside the chain, anchors -------------------------


def _count(url: str, sql: str) -> int | None:
    """The single number ``sql`` selects (``{log}``/``{state}`` placeholders); ``None`` when
    the table it reads does not exist."""
    raw = Raw("sqlite" if url.startswith("sqlite") else "postgres", url)
    sql = sql.format(log=raw.log, state=raw.state)
    if raw.backend == "sqlite":
        import sqlite3

        path = url.removeprefix("sqlite://")
        if not Path(path).exists():
            return None
        with sqlite3.connect(path) as conn:
            try:
                return int(conn.execute(sql).fetchone()[0])
            except sqlite3.OperationalError:
                return None
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        try:
            row = pg.execute(sql).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None else int(row[0])


def test_audit_verify_fails_without_the_state_row_and_repairs_nothing(log_url: str) -> None:
    Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url).execute(
        "DELETE FROM {state}"
    )

    first = burnlink("audit", "verify", "--store", log_url)
    again = burnlink("audit", "verify", "--store", log_url, "--json")

    assert first.exit_code == ExitCode.AUDIT_STATE
    assert int(ExitCode.AUDIT_STATE) == 9
    assert first.stdout == "FAILED: no_state (6 entries stored)\n"
    assert "state row is missing" in first.stderr
    assert again.exit_code == ExitCode.AUDIT_STATE
    assert json.loads(again.stdout)["problem"] == "no_state"
    assert _count(log_url, "SELECT count(*) FROM {state}") == 0  # verify wrote no new state


def test_audit_verify_fails_without_the_state_table_and_creates_none(log_url: str) -> None:
    Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url).execute(
        "DROP TABLE {state}"
    )

    result = burnlink("audit", "verify", "--store", log_url)

    assert result.exit_code == ExitCode.AUDIT_STATE
    assert result.stdout == "FAILED: no_state (6 entries stored)\n"
    assert _count(log_url, "SELECT count(*) FROM {state}") is None


@pytest.mark.parametrize(
    ("sql", "guarded", "expected"),
    [
        pytest.param(
            # The append-only triggers let this through: seq 7 is head + 1.
            "INSERT INTO {log} (seq, at, type, event, prev_mac, mac)"
            " SELECT 7, at, type, event, mac, prev_mac FROM {log} WHERE seq = 6",
            True,
            "FAILED at seq 7: outside_chain (past the recorded head, seq 6)",
            id="past-the-head",
        ),
        pytest.param(
            "INSERT INTO {log} (seq, at, type, event, prev_mac, mac)"
            " SELECT 0, at, type, event, prev_mac, mac FROM {log} WHERE seq = 1",
            False,
            "FAILED at seq 0: outside_chain (at or before the recorded base, seq 0)",
            id="behind-the-base",
        ),
    ],
)
def test_audit_verify_reports_a_row_outside_the_chain(
    log_url: str, sql: str, guarded: bool, expected: str
) -> None:
    Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url).execute(
        sql, guarded=guarded
    )

    result = burnlink("audit", "verify", "--store", log_url)

    assert result.exit_code == ExitCode.AUDIT_OUTSIDE_CHAIN
    assert int(ExitCode.AUDIT_OUTSIDE_CHAIN) == 10
    assert result.stdout == expected + "\n"


def test_audit_export_leaves_out_rows_outside_the_chain_and_refuses_a_bad_state(
    log_url: str,
) -> None:
    raw = Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url)
    raw.execute(
        "INSERT INTO {log} (seq, at, type, event, prev_mac, mac)"
        " SELECT 7, at, type, event, mac, prev_mac FROM {log} WHERE seq = 6",
        guarded=True,
    )

    exported = burnlink("audit", "export", "--store", log_url)
    raw.execute("DELETE FROM {state}")
    refused = burnlink("audit", "export", "--store", log_url)

    assert exported.exit_code == 0, exported.stderr
    assert [json.loads(x)["seq"] for x in exported.stdout.splitlines()] == [1, 2, 3, 4, 5, 6]
    assert refused.exit_code == ExitCode.AUDIT_STATE
    assert refused.stdout == ""


@pytest.fixture(params=["sqlite", "postgres"])
def missing_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where no audit log is: a file that does not exist, or a schema without the tables."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'nowhere' / 'audit.db'}"
    url: str = request.getfixturevalue("pg_audit_url")
    return url


def test_audit_verify_and_export_of_a_missing_log_fail_and_create_nothing(
    missing_url: str, tmp_path: Path
) -> None:
    before = sorted(tmp_path.rglob("*"))

    verified = burnlink("audit", "verify", "--store", missing_url)
    exported = burnlink("audit", "export", "--store", missing_url)

    assert verified.exit_code == ExitCode.AUDIT_MISSING
    assert int(ExitCode.AUDIT_MISSING) == 11
    assert "no audit log" in verified.stderr
    assert verified.stdout == ""
    assert exported.exit_code == ExitCode.AUDIT_MISSING
    assert sorted(tmp_path.rglob("*")) == before
    assert _count(missing_url, "SELECT count(*) FROM {log}") is None
    assert _count(missing_url, "SELECT count(*) FROM {state}") is None


def test_deleting_the_tail_and_the_state_row_is_caught_and_stops_the_server(
    log_url: str,
) -> None:
    from burnlink.errors import AuditStateInvalid

    Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url).execute(
        "DELETE FROM {log} WHERE seq >= 5"
    )
    Raw("sqlite" if log_url.startswith("sqlite") else "postgres", log_url).execute(
        "DELETE FROM {state}"
    )

    result = burnlink("audit", "verify", "--store", log_url)

    assert result.exit_code == ExitCode.AUDIT_STATE
    assert result.stdout == "FAILED: no_state (4 entries stored)\n"
    with pytest.raises(AuditStateInvalid, match="state row is missing"):
        asyncio.run(open_audit_store(log_url, key=KEY))  # no fresh state sealed over it
    assert _count(log_url, "SELECT count(*) FROM {state}") == 0


def _checkpoint_of(url: str, tmp_path: Path) -> tuple[Path, Path, Ed25519PrivateKey]:
    """A checkpoint of the log at ``url`` signed by a new key, written by ``CheckpointWriter``
    to a file, and that key's JWK set in another file."""
    from burnlink.audit.checkpoint import CheckpointWriter

    signing = Ed25519PrivateKey.generate()
    target = tmp_path / "checkpoint.json"

    async def write() -> None:
        store = await open_audit_store(url, key=KEY)
        try:
            writer = CheckpointWriter(
                store, signing_key=signing, now=lambda: T0 + timedelta(hours=1), file=target
            )
            assert await writer.write_once() is not None
        finally:
            await store.aclose()

    asyncio.run(write())
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(public_keys_document(signing.public_key())))
    return target, keys, signing


def _wipe_and_restart(url: str, appended: int) -> None:
    """Delete every entry and the state row, then let the server start a fresh log and
    append ``appended`` events: what someone with database access but no key can do."""
    raw = Raw("sqlite" if url.startswith("sqlite") else "postgres", url)
    raw.execute("DELETE FROM {log}")
    raw.execute("DELETE FROM {state}")

    async def restart() -> None:
        store = await open_audit_store(url, key=KEY)
        for n in range(appended):
            await store.append(make_event(100 + n))
        await store.aclose()

    asyncio.run(restart())


def test_a_signed_checkpoint_and_expect_head_catch_a_wiped_and_restarted_log(
    log_url: str, tmp_path: Path
) -> None:
    checkpoint, keys, _ = _checkpoint_of(log_url, tmp_path)
    intact = burnlink(
        "audit", "verify", "--store", log_url, "--checkpoint", str(checkpoint), "--key", str(keys)
    )
    _wipe_and_restart(log_url, appended=2)

    plain = burnlink("audit", "verify", "--store", log_url)
    held = burnlink(
        "audit", "verify", "--store", log_url, "--checkpoint", str(checkpoint), "--key", str(keys)
    )
    expected = burnlink("audit", "verify", "--store", log_url, "--expect-head", "6", "--json")

    assert (intact.exit_code, intact.stdout) == (0, "OK: 6 entries verified\n")
    assert (plain.exit_code, plain.stdout) == (0, "OK: 2 entries verified\n")  # on its own
    assert held.exit_code == ExitCode.AUDIT_BEHIND_ANCHOR
    assert int(ExitCode.AUDIT_BEHIND_ANCHOR) == 12
    assert held.stdout == (
        "FAILED at seq 3: behind_anchor (the head is seq 2; the checkpoint records seq 6)\n"
    )
    assert expected.exit_code == ExitCode.AUDIT_BEHIND_ANCHOR
    assert json.loads(expected.stdout)["problem"] == "behind_anchor"
    assert "--expect-head records seq 6" in json.loads(expected.stdout)["detail"]


def test_a_checkpoint_catches_a_rebuilt_log_that_got_past_its_seq(
    log_url: str, tmp_path: Path
) -> None:
    checkpoint, keys, _ = _checkpoint_of(log_url, tmp_path)
    _wipe_and_restart(log_url, appended=8)

    held = burnlink(
        "audit", "verify", "--store", log_url, "--checkpoint", str(checkpoint), "--key", str(keys)
    )

    assert held.exit_code == ExitCode.AUDIT_BEHIND_ANCHOR
    assert held.stdout == (
        "FAILED at seq 6: behind_anchor (the entry differs from the one the checkpoint records)\n"
    )


def test_audit_verify_checks_a_checkpoint_with_the_servers_own_signing_key(
    log_url: str, tmp_path: Path
) -> None:
    checkpoint, _, signing = _checkpoint_of(log_url, tmp_path)
    pem = signing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    result = burnlink(
        "audit",
        "verify",
        "--store",
        log_url,
        "--checkpoint",
        str(checkpoint),
        "--expect-head",
        "6",
        env={"BURNLINK_SIGNING_KEY": pem},
    )

    assert (result.exit_code, result.stdout) == (0, "OK: 6 entries verified\n")


@pytest.mark.parametrize("change", ["edited", "other-signer", "other-log", "not-json"])
def test_audit_verify_exits_13_for_a_checkpoint_that_does_not_verify(
    log_url: str, tmp_path: Path, change: str
) -> None:
    from burnlink.audit.checkpoint import Checkpoint, sign_checkpoint

    checkpoint, keys, signing = _checkpoint_of(log_url, tmp_path)
    document = json.loads(checkpoint.read_text())
    if change == "edited":
        document["statement"]["head_seq"] = 2
        checkpoint.write_text(json.dumps(document))
    elif change == "other-signer":
        keys.write_text(json.dumps(public_keys_document(Ed25519PrivateKey.generate().public_key())))
    elif change == "other-log":
        statement = Checkpoint.from_dict({**document["statement"], "log": "0" * 16})
        checkpoint.write_text(sign_checkpoint(statement, signing))
    else:
        checkpoint.write_text("head 6, I promise")

    result = burnlink(
        "audit", "verify", "--store", log_url, "--checkpoint", str(checkpoint), "--key", str(keys)
    )

    assert result.exit_code == ExitCode.CHECKPOINT_INVALID, result.stderr
    assert int(ExitCode.CHECKPOINT_INVALID) == 13
    assert result.stdout == ""
    assert "checkpoint" in result.stderr
