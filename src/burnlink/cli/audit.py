"""``burnlink audit verify|export|report`` and ``burnlink receipt verify`` (docs/cli.md).

The audit commands read the audit log directly from its database, with the same settings as
the server (``BURNLINK_AUDIT_STORE``, else ``BURNLINK_STORE``; ``BURNLINK_AUDIT_KEY``, else
the key file in ``BURNLINK_KEY_DIR``), and never create a key or change the log.
``receipt verify`` checks a saved proof-of-burn statement against a key set the user names
(never one the statement names).

Heavy modules are imported inside the commands, so that ``burnlink --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from burnlink.audit.events import AuditEventType
from burnlink.cli.output import clean, print_json, reporting
from burnlink.errors import (
    AuditBehindAnchor,
    AuditOutsideChain,
    AuditStateInvalid,
    CheckpointInvalid,
    ConfigError,
    IntegrityError,
    InvalidInput,
)
from burnlink.strict_json import DuplicateName, loads_strict

if TYPE_CHECKING:
    from burnlink.audit import Anchor, AuditBackend, AuditEntry, VerifyResult
    from burnlink.audit.checkpoint import Checkpoint
    from burnlink.audit.figures import Figures
    from burnlink.audit.report import Integrity

__all__ = ["audit", "receipt"]

KEYS_PATH = "/.well-known/burnlink-keys"
_TYPES = [t.value for t in AuditEventType]

_store_option = click.option(
    "--store",
    metavar="URL",
    help="The audit log's database: sqlite:///path or postgresql://host "
    "(default: BURNLINK_AUDIT_STORE, else BURNLINK_STORE).",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result, or the error, as JSON."
)


def _anchor_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--checkpoint``, ``--key`` and ``--expect-head``: what ``audit verify`` and ``audit
    report`` hold the log against, beside its own chain."""
    for option in reversed(
        (
            click.option(
                "--checkpoint",
                "checkpoint_path",
                metavar="FILE",
                type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                help="Also hold the log against this signed checkpoint of its head (the file"
                " BURNLINK_AUDIT_CHECKPOINT_FILE names; - for stdin).",
            ),
            click.option(
                "--key",
                metavar="URL|FILE",
                help="The keys that check --checkpoint: the server's base URL or key set URL, or"
                " a saved JWK set, JWK or PEM public key. Default: the server's own signing key.",
            ),
            click.option(
                "--expect-head",
                type=click.IntRange(min=0),
                metavar="SEQ",
                help="Also fail unless the log reaches SEQ, the last seq you recorded.",
            ),
        )
    ):
        command = option(command)
    return command


@click.group()
def audit() -> None:
    """Check and export the tamper-evident audit log (docs/audit.md)."""


@audit.command("verify")
@_store_option
@_anchor_options
@_json_option
def audit_verify(
    store: str | None,
    checkpoint_path: Path | None,
    key: str | None,
    expect_head: int | None,
    as_json: bool,
) -> None:
    """Check that the audit log is whole: its state row, that no entry lies outside it, and
    every entry's MAC chain; report OK, or the first problem. Read-only.

    \b
    Exit codes (docs/audit.md has a table of what each means):
      0  intact
      8  an entry is altered, missing, reordered or malformed
      9  the state row is missing or fails its MAC
      10 an entry lies outside the chain (past the head, or behind the base)
      11 there is no audit log at this location
      12 the head is behind --checkpoint or --expect-head
      13 the checkpoint does not verify, or is of another log
    """
    with reporting(as_json):
        import asyncio

        from burnlink.audit import Anchor

        checkpoint = None if checkpoint_path is None else _checkpoint(checkpoint_path, key, store)
        anchors: list[Anchor] = []
        if expect_head is not None:
            anchors.append(Anchor(expect_head, None, "--expect-head"))
        result = asyncio.run(_verify(store, anchors, checkpoint))
        if as_json:
            print_json(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "last_seq": result.last_seq,
                    "problem": None if result.problem is None else result.problem.value,
                    "seq": result.seq,
                    "detail": result.detail,
                }
            )
        else:
            click.echo(result.describe())
        if not result.ok:
            raise _failure(result)


@audit.command("export")
@_store_option
@click.option("--since", metavar="TIME", help="Entries at or after TIME (ISO 8601; UTC if bare).")
@click.option("--until", metavar="TIME", help="Entries before TIME.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (verifiable) or CSV (for reading).",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(_TYPES),
    metavar="TYPE",
    help="Only events of this type; repeat for several (secret.viewed, alert, …).",
)
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (mode 600) instead of stdout.",
)
def audit_export(
    store: str | None,
    since: str | None,
    until: str | None,
    format_: str,
    types: Sequence[str],
    output_path: Path | None,
) -> None:
    """Write audit entries as JSON Lines or CSV, oldest first.

    \b
      burnlink audit export --since 2030-01-01 --format csv > audit.csv
      burnlink audit export --type alert --type access.denied_ip
    """
    with reporting(as_json=False):
        import asyncio

        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
        kinds = [AuditEventType(t) for t in types] or None
        out = _open_output(output_path)
        try:
            count = asyncio.run(_export(store, format_, start, end, kinds, out))
        finally:
            if out is not sys.stdout:
                out.close()
        if output_path is not None:
            click.echo(f"Wrote {count} entries to {output_path}.", err=True)


@audit.command("report")
@_store_option
@click.option("--since", metavar="TIME", help="Entries at or after TIME (ISO 8601; UTC if bare).")
@click.option("--until", metavar="TIME", help="Entries before TIME.")
@click.option(
    "--output",
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report to this file (mode 600) instead of stdout.",
)
@click.option(
    "--pdf",
    "pdf_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also print it to this PDF file (mode 600), with Chromium (BURNLINK_CHROMIUM).",
)
@_anchor_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print the figures and the verification as JSON."
)
def audit_report(
    store: str | None,
    since: str | None,
    until: str | None,
    output_path: Path | None,
    pdf_path: Path | None,
    checkpoint_path: Path | None,
    key: str | None,
    expect_head: int | None,
    as_json: bool,
) -> None:
    """Write a compliance report of a period: the log verified against its last checkpoint,
    then activity per day, the secrets created and their protections, the median time to
    first view, denials, alerts and every event type. Read-only.

    \b
      burnlink audit report --since 2030-01-01 --until 2030-04-01 -o q1.html --pdf q1.pdf

    The report holds the log against BURNLINK_AUDIT_CHECKPOINT_FILE when it is set and no
    --checkpoint is given. It is written even when the log does not verify (it says so
    first); the exit code is then audit verify's (8 to 13).
    """
    with reporting(as_json):
        import asyncio

        from burnlink.audit import Anchor

        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
        if start is not None and end is not None and end <= start:
            raise InvalidInput("--until", "must be later than --since")
        anchors: list[tuple[Anchor, str]] = []
        checkpoint_log = None
        path = checkpoint_path or _configured_checkpoint(store)
        if path is not None:
            checkpoint = _checkpoint(path, key, store)
            checkpoint_log = checkpoint.log
            anchors.append(
                (
                    checkpoint.anchor(),
                    f"checkpoint of seq {checkpoint.head_seq} made at"
                    f" {checkpoint.at.isoformat(timespec='seconds')} ({path})",
                )
            )
        if expect_head is not None:
            anchors.append(
                (Anchor(expect_head, None, "--expect-head"), f"seq {expect_head} (--expect-head)")
            )
        figures, integrity = asyncio.run(
            _report(store, start, end, anchors, checkpoint_log=checkpoint_log)
        )
        if as_json:
            result = integrity.result
            print_json(
                {
                    "verified": {
                        "ok": result.ok,
                        "checked": result.checked,
                        "last_seq": result.last_seq,
                        "problem": None if result.problem is None else result.problem.value,
                        "seq": result.seq,
                        "detail": result.detail,
                        "anchors": list(integrity.anchors),
                        "log": integrity.log_id,
                    },
                    **figures.to_dict(),
                }
            )
        if not as_json or output_path is not None or pdf_path is not None:
            from burnlink.audit.report import print_pdf, render_html

            html = render_html(figures, integrity, generated=datetime.now(UTC))
            if output_path is not None or not as_json:
                out = _open_output(output_path)
                try:
                    out.write(html)
                finally:
                    if out is not sys.stdout:
                        out.close()
                if output_path is not None:
                    click.echo(f"Wrote the report to {output_path}.", err=True)
            if pdf_path is not None:
                print_pdf(html, pdf_path)
                click.echo(f"Wrote the PDF report to {pdf_path}.", err=True)
        if not integrity.result.ok:
            raise _failure(integrity.result)


@click.group()
def receipt() -> None:
    """Check a proof-of-burn statement from a receipt."""


@receipt.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--key",
    metavar="URL|FILE",
    help="The keys you trust (required): the base URL or /.well-known/burnlink-keys URL of the "
    "server you trust, or a saved JWK set, JWK or PEM public key. The issuer named inside the "
    "statement is never used to find keys: anyone can name any server there.",
)
@click.option("--id", "secret_id", metavar="ID", help="Also check the statement is about this id.")
@_json_option
def receipt_verify(file: Path, key: str | None, secret_id: str | None, as_json: bool) -> None:
    """Check the signed statement in FILE (a saved statement or a whole receipt; - for stdin)
    against the keys given with --key.

    Exits 0 when one of those keys signed it, 8 when it does not verify.
    """
    with reporting(as_json):
        from burnlink.signing import verify_statement

        if key is None:
            # The statement's own issuer cannot vouch for it: whoever signs a forged
            # statement names a server that publishes their own key.
            raise InvalidInput(
                "--key",
                "is needed: the keys you trust (a saved key file, or the URL of the server you"
                " trust); the issuer named inside a statement is never trusted",
            )
        document = _statement_document(file)
        keys, source = _load_keys(key)
        try:
            statement = verify_statement(json.dumps(document), keys)
        except InvalidInput as exc:
            raise IntegrityError(f"the statement does not verify: {exc.reason}") from None
        if secret_id is not None and not statement.about(secret_id):
            raise IntegrityError("the statement is about another secret than --id")
        facts = statement.to_dict()
        if as_json:
            print_json({"ok": True, **facts, "verified_with": source})
        else:
            click.echo(
                clean(
                    f"OK: signed by key {facts['kid']} from {source} (the keys you gave) that"
                    f" the secret with id hash {facts['id_hash']}, created"
                    f" {facts['created_at']}, ended {facts['ended_at']}: {facts['how']}."
                    f" Its issuer field says {facts['issuer'] or '(nothing)'}; only your keys"
                    " were trusted."
                )
            )


# -- helpers ------------------------------------------------------------------------------


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date or time (``2030-01-01``, ``2030-01-01T12:00Z``); bare means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(option, "must be an ISO 8601 date or time, e.g. 2030-01-01") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _failure(result: VerifyResult) -> IntegrityError:
    """The error (and so the exit code) for a failed verification."""
    from burnlink.audit import Problem

    if result.problem in {Problem.NO_STATE, Problem.BAD_STATE}:
        return AuditStateInvalid("the audit log's state row is missing or does not verify")
    if result.problem is Problem.OUTSIDE_CHAIN:
        return AuditOutsideChain("the audit log holds entries outside its chain")
    if result.problem is Problem.BEHIND_ANCHOR:
        return AuditBehindAnchor("the audit log does not reach the head recorded outside it")
    return IntegrityError("the audit log does not verify")


def _checkpoint(path: Path, key: str | None, store: str | None) -> Checkpoint:
    """The checkpoint in ``path``, checked against ``--key`` or the server's signing key."""
    from burnlink.audit.checkpoint import MAX_CHECKPOINT_BYTES, verify_checkpoint

    try:
        if str(path) == "-":
            text = sys.stdin.read(MAX_CHECKPOINT_BYTES + 1)
        else:
            with path.open(encoding="utf-8") as file:
                text = file.read(MAX_CHECKPOINT_BYTES + 1)
    except OSError as exc:
        raise InvalidInput("--checkpoint", f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InvalidInput("--checkpoint", "is not text") from None
    keys = _load_keys(key)[0] if key is not None else _own_public_key(store)
    return verify_checkpoint(text.strip(), keys)


def _own_public_key(store: str | None) -> Any:
    """The public half of the server's signing key, read (never created) from the settings."""
    from burnlink import keys
    from burnlink.config import load_settings
    from burnlink.signing import load_or_create_signing_key

    settings = load_settings(audit_store=store)
    if settings.signing_key is not None:
        return keys.parse_signing_key(settings.signing_key.get_secret_value()).public_key()
    path = Path(settings.key_dir).expanduser() / keys.SIGNING_KEY_FILE
    if not path.is_file():
        raise ConfigError(
            f"--checkpoint needs --key, BURNLINK_SIGNING_KEY or the key file at {path}"
        )
    private, _ = load_or_create_signing_key(path)
    return private.public_key()


async def _open(store: str | None) -> tuple[AuditBackend, bytes]:
    from burnlink import keys
    from burnlink.audit import open_audit_store
    from burnlink.config import load_settings

    settings = load_settings(audit_store=store)
    url = settings.audit_url()
    if url.partition("://")[0].lower() == "memory":
        raise ConfigError("an audit log in memory:// lives only inside its server process")
    key = keys.audit_key(settings, create=False)
    # Read-only: verifying or exporting must never create, seal or repair a log.
    return await open_audit_store(url, key=key, read_only=True), key


async def _verify(
    store: str | None, anchors: Sequence[Anchor], checkpoint: Checkpoint | None
) -> VerifyResult:
    from burnlink.audit import verify_store
    from burnlink.ids import key_id

    log, key = await _open(store)
    try:
        if checkpoint is not None:
            if checkpoint.log != key_id(key):
                raise CheckpointInvalid(
                    f"The checkpoint is of another audit log (key id {checkpoint.log}, this"
                    f" log's is {key_id(key)})."
                )
            anchors = [checkpoint.anchor(), *anchors]
        return await verify_store(log, key, anchors=anchors)
    finally:
        await log.aclose()


async def _export(
    store: str | None,
    format_: str,
    since: datetime | None,
    until: datetime | None,
    types: list[AuditEventType] | None,
    out: IO[str],
) -> int:
    from burnlink.audit.export import export_lines

    log, _ = await _open(store)
    count = 0
    try:
        async for line in export_lines(
            log, "csv" if format_ == "csv" else "jsonl", since=since, until=until, types=types
        ):
            out.write(line)
            count += 1
        out.flush()
    finally:
        await log.aclose()
    return count - 1 if format_ == "csv" else count


def _configured_checkpoint(store: str | None) -> Path | None:
    """``BURNLINK_AUDIT_CHECKPOINT_FILE``, when set; a set file that is missing is an error
    (fail closed: a report must not quietly drop the check the operator asked for)."""
    from burnlink.config import load_settings

    configured = load_settings(audit_store=store).audit_checkpoint_file
    if configured is None:
        return None
    path = Path(configured).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"BURNLINK_AUDIT_CHECKPOINT_FILE names {path}, which does not exist; pass"
            " --checkpoint with the last checkpoint you kept"
        )
    return path


async def _report(
    store: str | None,
    since: datetime | None,
    until: datetime | None,
    anchors: Sequence[tuple[Anchor, str]],
    *,
    checkpoint_log: str | None,
) -> tuple[Figures, Integrity]:
    """Verify the log, then count the period's entries inside the chain its state names."""
    from burnlink.audit import verify_store
    from burnlink.audit.figures import tally
    from burnlink.audit.report import Integrity
    from burnlink.ids import key_id

    log, key = await _open(store)
    try:
        if checkpoint_log is not None and checkpoint_log != key_id(key):
            raise CheckpointInvalid(
                f"The checkpoint is of another audit log (key id {checkpoint_log}, this"
                f" log's is {key_id(key)})."
            )
        result = await verify_store(log, key, anchors=[anchor for anchor, _ in anchors])
        bounds = await log.bounds()
        state = bounds.state
        if state is None:
            figures = await tally(_nothing(), since=since, until=until)
        else:
            entries = log.iter_entries(
                since=since, until=until, after_seq=state.base.seq, through_seq=state.head.seq
            )
            figures = await tally(entries, since=since, until=until)
        return figures, Integrity(result, [text for _, text in anchors], key_id(key))
    finally:
        await log.aclose()


async def _nothing() -> AsyncIterator[AuditEntry]:
    return
    yield  # pragma: no cover - makes this an (empty) async generator


def _open_output(path: Path | None) -> IO[str]:
    """Standard output, or ``path`` created with mode 0600 (an export names who did what)."""
    if path is None:
        return sys.stdout
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise InvalidInput("--output", f"cannot be written ({exc.strerror})") from None
    return open(fd, "w", encoding="utf-8", newline="")


def _statement_document(file: Path) -> dict[str, Any]:
    """The signed document in ``file``: itself, or a receipt's ``statement`` member."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        data = loads_strict(text)
    except OSError as exc:
        raise InvalidInput("FILE", f"cannot be read ({exc.strerror})") from None
    except DuplicateName as exc:
        raise InvalidInput("FILE", f"is refused: {exc.msg}") from None
    except ValueError:
        raise InvalidInput("FILE", "is not JSON") from None
    if (
        isinstance(data, dict)
        and "signature" not in data
        and isinstance(data.get("statement"), dict)
    ):
        data = data["statement"]  # a whole receipt
    if not isinstance(data, dict) or "signature" not in data:
        raise InvalidInput("FILE", "holds no signed statement (an ended receipt has one)")
    return data


def _load_keys(source: str) -> tuple[Any, str]:
    """The key set, JWK or public key that ``--key`` names, and where it came from (the keys
    URL fetched, or the file)."""
    if source.startswith(("https://", "http://")):
        return _fetch_keys(source)
    where = str(Path(source).expanduser())
    try:
        content = Path(source).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidInput("--key", f"cannot be read ({exc.strerror})") from None
    if content.lstrip().startswith(b"-----BEGIN"):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            public = load_pem_public_key(content)
        except ValueError:
            raise InvalidInput("--key", "is not a PEM public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise InvalidInput("--key", "is not an Ed25519 key")
        return public, where
    try:
        loaded = json.loads(content)
    except ValueError:
        raise InvalidInput("--key", "is neither JSON (a JWK or JWK set) nor PEM") from None
    if not isinstance(loaded, dict):
        raise InvalidInput("--key", "is not a JWK or JWK set")
    return loaded, where


def _fetch_keys(url: str) -> tuple[dict[str, Any], str]:
    import httpx

    from burnlink.cli.client import TIMEOUT, USER_AGENT, ServerUnavailable

    target = url if url.rstrip("/").endswith(KEYS_PATH) else url.rstrip("/") + KEYS_PATH
    try:
        response = httpx.get(target, timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})
    except httpx.HTTPError as exc:
        raise ServerUnavailable(
            f"cannot fetch the keys from {target} ({type(exc).__name__})"
        ) from None
    try:
        keys = response.json() if response.is_success else None
    except ValueError:
        keys = None
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise ServerUnavailable(
            f"{target} did not answer with a key set (HTTP {response.status_code})"
        )
    return keys, target
