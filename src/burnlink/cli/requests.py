"""``burnlink request`` and ``burnlink answer``: ask for a secret, and answer a request
(docs/cli.md § Requests; the API is docs/api.md § Requests for a secret).

``request`` makes a P-256 key pair in memory, creates the request, prints the request link
``{base}/r/{id}#{F}.{link_token}`` (``F`` = SHA-256 of the public key, computed here), and with
``--wait`` long-polls the server until the answer arrives, opens it with the private key and
writes it out. The private key never leaves this process; without ``--wait`` the requester's
own link ``{base}/k/{id}#{requester_token}.{k}`` (which holds it) is printed for the web page.

``answer`` reads the secret, fetches the request, refuses a public key whose SHA-256 is not the
link's ``F`` (``KeyMismatch``: a server that swapped in its own key; nothing is sent), seals
the secret to it and submits it once.

Both are ``burnlink.sdk.Client.request`` and ``Client.answer`` (docs/sdk.md § Requests for a
secret); this module reads the input and writes the output.
"""

from __future__ import annotations

from pathlib import Path

import click

from burnlink.cli import inputs, links, output
from burnlink.cli.client import USER_AGENT
from burnlink.errors import RequestTimedOut
from burnlink.links import RequestLink, parse_request_link
from burnlink.sdk import Client, Requested, Revealed

__all__ = ["RequestLink", "answer", "parse_request_link", "request"]


def request(
    *,
    server: str,
    description: str,
    wait: bool,
    timeout: int | None,
    ttl: int | None,
    answer_ttl: int | None,
    answer_views: int | None,
    output_path: Path | None,
    as_json: bool,
    api_token: str | None,
    recipients: tuple[str, ...] = (),
) -> None:
    """Ask for a secret; with ``wait``, wait for it and write it out (module docstring)."""
    from burnlink.cli.actions import _check_writable

    base = links.parse_server(server)
    if output_path is not None:
        _check_writable(output_path)

    def send(made: Requested) -> None:
        click.echo(f"Send this link to whoever should answer:\n  {made.url}", err=True)
        click.echo(
            "Waiting for the answer"
            + (f" (at most {timeout} seconds)" if timeout is not None else "")
            + "...",
            err=True,
        )

    with Client(base, token=api_token, user_agent=USER_AGENT) as client:
        try:
            made = client.request(
                description,
                ttl=ttl,
                answer_ttl=answer_ttl,
                answer_views=answer_views,
                recipients=recipients,
                wait=wait,
                timeout=timeout,
                on_link=send,
            )
        except RequestTimedOut as exc:
            # Unlike the SDK's caller, the CLI printed no requester link: the key is gone.
            raise RequestTimedOut(
                f"no answer within {timeout} seconds; the request stays open until"
                f" {exc.expires_at}, but its private key was only in this process"
            ) from None
    if made.answer is not None:
        _write(made.answer, output_path=output_path, as_json=as_json)
    elif as_json:
        output.print_json(
            {
                "id": made.id,
                "request_url": made.url,
                "requester_url": made.requester_url,
                "expires_at": made.expires_at,
            }
        )
    else:
        click.echo(made.url)
        click.echo(
            "Keep this link to open the answer in a browser (it holds the private key;"
            f" never send it):\n  {made.requester_url}",
            err=True,
        )


def _write(revealed: Revealed, *, output_path: Path | None, as_json: bool) -> None:
    from burnlink.cli.actions import write_revealed

    write_revealed(revealed, output_path=output_path, as_json=as_json)


def answer(*, link: str, file: Path | None, as_json: bool, api_token: str | None) -> None:
    """Answer a request once (module docstring)."""
    parsed = parse_request_link(link)
    payload = inputs.read_secret(file)
    # The user's API token goes to the link's server, as a signed-in recipient's.
    with Client(parsed.base, token=api_token, user_agent=USER_AGENT) as client:
        done = client.answer(link, payload)
    if as_json:
        output.print_json(
            {
                "id": done.id,
                "manage_url": done.manage_url,
                "expires_at": done.expires_at,
                "max_views": done.max_views,
            }
        )
        return
    click.echo("Answered: only the requester can open it.", err=True)
    click.echo(f"Receipt (who opened it, and burning it): {done.manage_url}", err=True)
