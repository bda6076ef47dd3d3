"""``burnlink unlock ADDRESS``: lift the failure locks of a client address now (docs/access.md).

Like the audit commands it works on the store directly, with the server's settings
(``BURNLINK_STORE``, or ``--store``), so it needs no admin token and no running server. It clears
the client's counts of failed reveals (client-wide) and of wrong admin tokens in their current
windows, and its failed reveals on each ``--secret`` named; nothing else changes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click

from burnlink.cli.output import print_json, reporting
from burnlink.errors import InvalidInput

__all__ = ["unlock"]


@click.command()
@click.argument("address")
@click.option(
    "--secret",
    "secret_ids",
    metavar="ID",
    multiple=True,
    help="Also lift the lock of this address on one secret (its id, from the link). Repeatable.",
)
@click.option("--store", metavar="URL", help="The store (default: BURNLINK_STORE).")
@click.option("--json", "as_json", is_flag=True, help="Print the result, or the error, as JSON.")
def unlock(address: str, secret_ids: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Let a client address that failed too often reveal secrets again, now.

    ADDRESS is the client's IP address as the server sees it (after BURNLINK_TRUSTED_PROXIES);
    an IPv6 address stands for its /64. Prints how many counted failures were cleared.

    \b
      burnlink unlock 203.0.113.7
      burnlink unlock 203.0.113.7 --secret Zm9vYmFyYmF6cXV4cXV1eA
    """
    with reporting(as_json):
        cleared, client = asyncio.run(_unlock(address, secret_ids, store))
        if as_json:
            print_json({"client": client, "cleared": cleared})
        else:
            click.echo(f"Cleared {cleared} counted failures of {client}.")


async def _unlock(address: str, secret_ids: tuple[str, ...], url: str | None) -> tuple[int, str]:
    from burnlink.clock import SystemClock
    from burnlink.config import load_settings
    from burnlink.ids import is_secret_id
    from burnlink.policy import parse_ip
    from burnlink.service.rate_limits import RateLimiter, client_key
    from burnlink.store import open_store

    if parse_ip(address.strip()) is None:
        raise InvalidInput("ADDRESS", "must be an IPv4 or IPv6 address")
    for secret_id in secret_ids:
        if not is_secret_id(secret_id):
            raise InvalidInput("--secret", "must be a secret's id (22 characters of the link)")
    settings = load_settings(store=url)
    opened = await open_store(settings.store, retention=timedelta(days=settings.receipt_days))
    try:
        limiter = RateLimiter(
            opened,
            settings.limit("failures"),
            settings.limit("secret_failures"),
            settings.limit("admin"),
        )
        cleared = await limiter.unlock(
            address.strip(), now=SystemClock().now(), secret_ids=secret_ids
        )
    finally:
        await opened.aclose()
    return cleared, client_key(address.strip())
