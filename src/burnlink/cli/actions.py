"""What each command does, once ``main`` has parsed its options.

``main`` imports this module inside the commands, so that ``burnlink --help`` loads neither
cryptography nor httpx; ``serve`` imports the web stack only when it runs.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import click

from burnlink import __version__
from burnlink.cli import inputs, links, output
from burnlink.cli.client import ApiClient, ServerUnavailable
from burnlink.crypto import Payload, derive_keys, new_link_key, open_envelope, seal
from burnlink.envelope import MIN_ITERATIONS, Envelope
from burnlink.errors import InvalidInput, PassphraseRequired

PBKDF2_ITERATIONS = MIN_ITERATIONS


def share(
    *,
    server: str,
    ttl: str | None,
    views: int | None,
    ask_passphrase: bool,
    passphrase_file: Path | None,
    file: Path | None,
    as_json: bool,
) -> None:
    """Seal the secret here, store the envelope, print the link (and the manage link)."""
    base = links.parse_server(server)
    seconds = inputs.parse_ttl(ttl) if ttl is not None else None
    payload = inputs.read_secret(file)
    passphrase = inputs.sender_passphrase(ask=ask_passphrase, file=passphrase_file)
    link_key = new_link_key()
    sealed = seal(payload, link_key, passphrase=passphrase, iterations=PBKDF2_ITERATIONS)
    with ApiClient(base) as api:
        created = api.create(
            sealed.envelope,
            sealed.keys.access_token,
            sealed.keys.passphrase_proof,
            ttl=seconds,
            max_views=views,
        )
    link = links.secret_link(created.url, link_key)
    if as_json:
        output.print_json(
            {
                "url": link,
                "manage_url": created.manage_url,
                "expires_at": created.expires_at,
                "id": created.id,
                "max_views": created.max_views,
            }
        )
        return
    click.echo(link)
    views_text = "1 view" if created.max_views == 1 else f"{created.max_views} views"
    click.echo(f"Expires at {created.expires_at} or after {views_text}.", err=True)
    if passphrase is not None and passphrase_file is None and not ask_passphrase:
        click.echo(f"Protected with the passphrase in {inputs.PASSPHRASE_ENV}.", err=True)
    click.echo(f"Manage link (status, burn; keep it private): {created.manage_url}", err=True)


def get(*, link: str, key: str | None, output_path: Path | None, as_json: bool) -> None:
    """Take one view, open it here, and write the exact content to stdout or a file."""
    parsed = links.parse_secret_link(link, key)
    if output_path is not None:
        _check_writable(output_path)
    keys = derive_keys(parsed.token)
    with ApiClient(parsed.base) as api:
        info = api.info(parsed.secret_id, keys.access_token)
        if info.passphrase is not None:
            passphrase = inputs.receiver_passphrase()
            if passphrase is None:
                raise PassphraseRequired(info.attempts_left)
            keys = derive_keys(
                parsed.token,
                passphrase=passphrase,
                salt=info.passphrase.salt,
                iterations=info.passphrase.iterations,
            )
        consumed = api.consume(parsed.secret_id, keys.access_token, keys.passphrase_proof)
    payload = open_envelope(Envelope.from_json(consumed.envelope), keys)
    if as_json:
        output.print_json(_reveal_json(payload, consumed.views_left))
    elif output_path is not None:
        _write_private(output_path, payload.content)
        click.echo(f"Wrote {len(payload.content)} bytes to {output_path}.", err=True)
    else:
        stdout = sys.stdout.buffer
        stdout.write(payload.content)
        # Exact bytes for pipes and files; on a terminal, keep the prompt off the secret's line.
        if sys.stdout.isatty() and not payload.content.endswith(b"\n"):
            stdout.write(b"\n")
        stdout.flush()


def status(*, link: str, as_json: bool) -> None:
    """Print the receipt of a secret."""
    parsed = links.parse_manage_link(link)
    with ApiClient(parsed.base) as api:
        receipt = api.receipt(parsed.secret_id, parsed.token)
    if as_json:
        output.print_json(output.receipt_json(receipt))
    else:
        click.echo(output.receipt_text(receipt))


def burn(*, link: str) -> None:
    """Destroy a secret now."""
    parsed = links.parse_manage_link(link)
    with ApiClient(parsed.base) as api:
        api.burn(parsed.secret_id, parsed.token)
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

    import uvicorn

    from burnlink.config import load_settings
    from burnlink.store import redact_url

    overrides = {
        "host": host,
        "port": port,
        "store": store,
        "workers": workers,
        "base_url": base_url,
    }
    settings = load_settings(**overrides)
    asyncio.run(_check_store(settings.store, settings.receipt_days))
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
        )
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ServerUnavailable("the server could not start; see the log above") from None
        raise


async def _check_store(url: str, receipt_days: int) -> None:
    # Fail here, with one line and exit code 7 or 5, rather than inside uvicorn's start-up.
    from datetime import timedelta

    from burnlink.store import open_store

    opened = await open_store(url, retention=timedelta(days=receipt_days))
    await opened.aclose()


def _reveal_json(payload: Payload, views_left: int) -> dict[str, object]:
    # Like the API's reveal: text that is not UTF-8 is shown as a file, never mangled.
    text = payload.text_or_none()
    if text is not None:
        return {"secret": text, "file": None, "views_left": views_left}
    file = {
        "name": payload.name,
        "mime": payload.mime,
        "content_base64": base64.b64encode(payload.content).decode("ascii"),
    }
    return {"secret": None, "file": file, "views_left": views_left}


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
