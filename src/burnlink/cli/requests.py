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
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from burnlink.cli import inputs, links, output
from burnlink.cli.client import ApiClient, KeyMismatch, RequestTimedOut, ServerUnavailable
from burnlink.crypto import Payload
from burnlink.errors import EnvelopeError, InvalidInput, RequestAnswered, RequestExpired
from burnlink.ids import TOKEN_BYTES, b64url_decode, b64url_encode
from burnlink.links import RequestLink, parse_request_link
from burnlink.request_crypto import (
    KeyPair,
    SealedAnswer,
    check_fingerprint,
    open_answer,
    parse_public_key,
    seal_answer,
)
from burnlink.sdk.protocol import Call

__all__ = ["RequestClient", "RequestLink", "answer", "parse_request_link", "request"]

MAX_POLL = 60
"""The longest long poll the API allows (seconds)."""


@dataclass(frozen=True, slots=True)
class AskedRequest:
    """What the server answered to a new request."""

    request_id: str
    url: str
    requester_url: str
    link_token: bytes = field(repr=False)
    requester_token: bytes = field(repr=False)
    expires_at: str


class RequestClient(ApiClient):
    """``ApiClient`` with the calls of ``/api/v1/requests``."""

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: bytes | None = None,
        body: dict[str, Any] | None = None,
        recipient: bool = False,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One call; its JSON answer. With ``recipient``, the user's API token goes beside
        ``token`` (a request bound to recipients); ``timeout`` replaces the client's (a long
        poll)."""
        user = self.api_token if recipient or token is None else None
        call = Call(
            method, self.base, path, dict, token=token, user=user, body=body,
            params=params, timeout=timeout,
        )  # fmt: skip
        return self._transport.send(call)

    def ask(
        self,
        public_key: bytes,
        description: str,
        *,
        ttl: int | None,
        answer_ttl: int | None,
        answer_views: int | None,
        recipients: tuple[str, ...] = (),
    ) -> AskedRequest:
        """``POST /requests``."""
        body: dict[str, Any] = {
            "public_key": b64url_encode(public_key),
            "description": description,
        }
        if recipients:
            body["recipients"] = list(recipients)
        for name, value in (
            ("ttl", ttl),
            ("answer_ttl", answer_ttl),
            ("answer_views", answer_views),
        ):
            if value is not None:
                body[name] = value
        answer = self._call("POST", "/requests", body=body)
        return AskedRequest(
            request_id=_text(answer, "id"),
            url=_text(answer, "url"),
            requester_url=_text(answer, "requester_url"),
            link_token=_token(answer, "link_token"),
            requester_token=_token(answer, "requester_token"),
            expires_at=_text(answer, "expires_at"),
        )

    def view(self, request_id: str, link_token: bytes) -> dict[str, Any]:
        """``GET /requests/{id}`` with the request link's token."""
        return self._call("GET", f"/requests/{request_id}", token=link_token, recipient=True)

    def answer(self, request_id: str, link_token: bytes, sealed: SealedAnswer) -> dict[str, Any]:
        """``POST /requests/{id}/answer``."""
        return self._call(
            "POST",
            f"/requests/{request_id}/answer",
            token=link_token,
            body={"answer": sealed.to_json()},
            recipient=True,
        )

    def status(self, request_id: str, requester_token: bytes, *, wait: int) -> dict[str, Any]:
        """``GET /requests/{id}/status?wait=`` (a long poll of ``wait`` seconds)."""
        return self._call(
            "GET",
            f"/requests/{request_id}/status",
            token=requester_token,
            params={"wait": wait},
            timeout=self.timeout + wait,
        )

    def open(self, request_id: str, requester_token: bytes) -> tuple[SealedAnswer, int]:
        """``POST /requests/{id}/open``: one view of the sealed answer."""
        answer = self._call("POST", f"/requests/{request_id}/open", token=requester_token)
        sealed = answer.get("answer")
        views = answer.get("views_left")
        if type(views) is not int:
            raise ServerUnavailable("the server's answer lacks views_left")
        try:
            return SealedAnswer.from_json(sealed), views
        except EnvelopeError as exc:
            raise ServerUnavailable(f"the server returned a malformed answer ({exc})") from None


def _text(answer: dict[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str):
        raise ServerUnavailable(f"the server's answer lacks {name}")
    return value


def _token(answer: dict[str, Any], name: str) -> bytes:
    try:
        return b64url_decode(_text(answer, name), field=name, length=TOKEN_BYTES)
    except InvalidInput:
        raise ServerUnavailable(f"the server's answer has a malformed {name}") from None


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
    keys = KeyPair.generate()
    with RequestClient(base, api_token=api_token) as api:
        asked = api.ask(
            keys.public,
            description,
            ttl=ttl,
            answer_ttl=answer_ttl,
            answer_views=answer_views,
            recipients=recipients,
        )
        link = f"{asked.url}#{b64url_encode(keys.fingerprint)}.{b64url_encode(asked.link_token)}"
        mine = f"{asked.requester_url}#{b64url_encode(asked.requester_token)}.{keys.to_text()}"
        if not wait:
            if as_json:
                output.print_json(
                    {
                        "id": asked.request_id,
                        "request_url": link,
                        "requester_url": mine,
                        "expires_at": asked.expires_at,
                    }
                )
            else:
                click.echo(link)
                click.echo(
                    "Keep this link to open the answer in a browser (it holds the private key;"
                    f" never send it):\n  {mine}",
                    err=True,
                )
            return
        click.echo(f"Send this link to whoever should answer:\n  {link}", err=True)
        limit = timeout
        click.echo(
            "Waiting for the answer"
            + (f" (at most {limit} seconds)" if limit is not None else "")
            + "...",
            err=True,
        )
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            left = MAX_POLL if deadline is None else int(deadline - time.monotonic())
            if left <= 0:
                raise RequestTimedOut(
                    f"no answer within {limit} seconds; the request stays open until"
                    f" {asked.expires_at}, but its private key was only in this process"
                )
            state = api.status(asked.request_id, asked.requester_token, wait=min(MAX_POLL, left))
            if state.get("state") == "answered":
                break
            if state.get("state") == "expired":
                raise RequestExpired
        sealed, views_left = api.open(asked.request_id, asked.requester_token)
    payload = open_answer(sealed, keys, asked.request_id)
    _write(payload, views_left, output_path=output_path, as_json=as_json)


def _write(payload: Payload, views_left: int, *, output_path: Path | None, as_json: bool) -> None:
    from burnlink.cli.actions import _write_private

    if as_json:
        output.print_json({**payload.answer(), "views_left": views_left})
    elif output_path is not None:
        _write_private(output_path, payload.content)
        click.echo(f"Wrote {len(payload.content)} bytes to {output_path}.", err=True)
    else:
        stdout = sys.stdout.buffer
        stdout.write(payload.content)
        if sys.stdout.isatty() and not payload.content.endswith(b"\n"):
            stdout.write(b"\n")
        stdout.flush()


def answer(*, link: str, file: Path | None, as_json: bool, api_token: str | None) -> None:
    """Answer a request once (module docstring)."""
    parsed = parse_request_link(link)
    payload = inputs.read_secret(file)
    with RequestClient(parsed.base, api_token=api_token) as api:
        shown = api.view(parsed.request_id, parsed.link_token)
        try:
            public = parse_public_key(shown.get("public_key"), "public_key")
            check_fingerprint(public, parsed.fingerprint)
        except EnvelopeError:
            raise KeyMismatch(
                "the server handed out a public key that is not the one this request link"
                " names; nothing was sent (the server, or something between, swapped it)"
            ) from None
        state = shown.get("state")
        if state == "answered":
            raise RequestAnswered
        if state == "expired":
            raise RequestExpired
        max_bytes = shown.get("max_bytes")
        if type(max_bytes) is int and len(payload.content) > max_bytes:
            from burnlink.errors import PayloadTooLarge

            raise PayloadTooLarge(max_bytes, field="secret")
        sealed = seal_answer(
            payload, public, parsed.request_id, expected_fingerprint=parsed.fingerprint
        )
        done = api.answer(parsed.request_id, parsed.link_token, sealed)
    if as_json:
        output.print_json(
            {
                "id": done.get("secret_id"),
                "manage_url": done.get("manage_url"),
                "expires_at": done.get("expires_at"),
                "max_views": done.get("max_views"),
            }
        )
        return
    click.echo("Answered: only the requester can open it.", err=True)
    click.echo(f"Receipt (who opened it, and burning it): {done.get('manage_url')}", err=True)
