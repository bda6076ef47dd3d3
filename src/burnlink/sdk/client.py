"""``Client`` and ``AsyncClient``: share, get, status, burn, request and answer, end-to-end
encrypted (docs/sdk.md); and ``ApiClient``, one method per API call, for the CLI's own calls.

A client talks to its own ``server`` (where ``share`` creates) and to whatever server a link
names (``get``, ``status``, ``burn``). The API token (``blk_…``) goes only to the client's own
server: as the creator of shares, and, for a secret bound to signed-in recipients, as the
recipient once the server asks for one. Other secrets and other servers never see it.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

from burnlink.errors import InvalidInput, SecretUnavailable
from burnlink.links import parse_request_link, parse_secret_link, parse_server
from burnlink.sdk import protocol
from burnlink.sdk.models import (
    AccessRules,
    Answered,
    Created,
    Me,
    Policy,
    Receipt,
    Requested,
    Revealed,
    Shared,
)
from burnlink.sdk.protocol import TIMEOUT, USER_AGENT, Flow
from burnlink.sdk.transport import AsyncTransport, SyncTransport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import httpx

    from burnlink.envelope import Envelope
    from burnlink.sdk.flows import Ask, Secret
    from burnlink.sdk.models import Consumed, SecretInfo


class _Base:
    """What the sync and async clients share: the server, the token, and the flows."""

    def __init__(self, server: str | None, token: str | None) -> None:
        self.server = parse_server(server, "server") if server is not None else None
        self.token = token

    def _share(
        self,
        secret: Secret,
        ttl: int | None,
        views: int | None,
        passphrase: str | None,
        filename: str | None,
        mime: str | None,
        rules: Mapping[str, Any],
    ) -> Flow[Shared]:
        from burnlink.sdk import flows

        if self.server is None:
            raise InvalidInput("server", "is not set; Client(server=...) names where to share")
        payload = flows.payload_of(secret, filename=filename, mime=mime)
        return flows.share(
            self.server,
            payload,
            ttl=ttl,
            views=views,
            passphrase=passphrase,
            rules=rules,
            user=self.token,
        )

    def _request(
        self,
        description: str,
        ttl: int | None,
        answer_ttl: int | None,
        answer_views: int | None,
        recipients: Sequence[str],
        wait: bool | float,
        timeout: float | None,
        call_timeout: float,
        on_link: Callable[[Requested], None] | None,
    ) -> Flow[Requested]:
        from burnlink.sdk import flows

        if self.server is None:
            raise InvalidInput("server", "is not set; Client(server=...) names where to ask")
        if isinstance(wait, bool):
            limit = (math.inf if timeout is None else timeout) if wait else None
        elif timeout is not None:
            raise InvalidInput("timeout", "is for wait=True; wait=seconds sets the limit itself")
        else:
            limit = wait
        if limit is not None and not limit > 0:
            raise InvalidInput("timeout", "must be more than 0 seconds")
        return flows.request(
            self.server,
            description,
            ttl=ttl,
            answer_ttl=answer_ttl,
            answer_views=answer_views,
            recipients=tuple(recipients),
            wait=limit,
            call_timeout=call_timeout,
            user=self.token,
            on_link=on_link,
        )

    def _answer(
        self, request_link: str, content: Secret | PathLike[str], mime: str | None
    ) -> Flow[Answered]:
        from burnlink.sdk import flows

        if isinstance(content, PathLike):
            path = Path(content)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InvalidInput("content", f"cannot be read ({exc.strerror})") from None
            payload = flows.payload_of(data, filename=path.name, mime=mime)
        else:
            payload = flows.payload_of(content, mime=mime)
        # The client's token goes only to the server it is for.
        parsed = parse_request_link(request_link)
        user = self.token if self.server and parsed.base == self.server else None
        return flows.answer(request_link, payload, user=user)

    def _reveal(
        self,
        link: str,
        key: str | None,
        passphrase: str | Ask | None,
        otp: str | Ask | None,
        ask_otp: Callable[[str], str | None] | None,
        token: str | Ask | None,
    ) -> Flow[Revealed]:
        from burnlink.sdk import flows

        # The client's token goes only to the server it is for.
        if token is None and self.server and parse_secret_link(link, key).base == self.server:
            token = self.token
        return flows.reveal(
            link, key=key, passphrase=passphrase, otp=otp, ask_otp=ask_otp, user=token
        )


class Client(_Base):
    """A burnlink client. Use it as a context manager, or ``close()`` it.

    >>> with Client("https://secrets.example.com", token=os.environ.get("BURNLINK_TOKEN")) as c:
    ...     shared = c.share("db password: hunter2", ttl=3600)
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        token: str | None = None,
        timeout: float = TIMEOUT,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``server``: the base URL secrets are shared on (``https://host[/prefix]``), not
        needed to get, check or burn a link. ``token``: an API token (``blk_…``, from
        ``burnlink login`` or the web page) to share as a signed-in user."""
        super().__init__(server, token)
        self._timeout = timeout
        self._transport = SyncTransport(timeout=timeout, user_agent=user_agent, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def share(
        self,
        secret: Secret,
        *,
        ttl: int | None = None,
        views: int | None = None,
        passphrase: str | None = None,
        filename: str | None = None,
        mime: str | None = None,
        **rules: Unpack[AccessRules],
    ) -> Shared:
        """Encrypt ``secret`` here and store it; return its link and manage link.

        ``secret``: ``str`` is shared as text; ``bytes`` as a file when ``filename`` or
        ``mime`` is given or they are not UTF-8, else as text. ``ttl``: seconds (the
        server's default when ``None``); ``views``: how many views (default 1).
        ``passphrase``: also needed to open it (send it another way). ``rules``: the access
        rules of ``AccessRules``.
        """
        return self._transport.run(
            self._share(secret, ttl, views, passphrase, filename, mime, rules)
        )

    def reveal(
        self,
        link: str,
        *,
        key: str | None = None,
        passphrase: str | Ask | None = None,
        otp: str | Ask | None = None,
        ask_otp: Callable[[str], str | None] | None = None,
        token: str | Ask | None = None,
    ) -> Revealed:
        """Take one view of the secret behind ``link`` and open it here: the content with
        its file name and type, and the views left.

        ``key``: the key of a link sent without its ``#key``. ``passphrase``: for a protected
        secret (a callable is asked only when it is). ``otp``: the code the server mailed to
        the recipient; without it the first call has a code mailed and raises
        ``VerificationRequired`` (unless ``ask_otp(hint)`` gives the code). ``token``: a
        recipient's API token for this link (default: the client's, when the link is on the
        client's server), sent only if the secret needs a signed-in recipient.
        """
        return self._transport.run(self._reveal(link, key, passphrase, otp, ask_otp, token))

    def get(
        self,
        link: str,
        *,
        key: str | None = None,
        passphrase: str | Ask | None = None,
        otp: str | Ask | None = None,
        token: str | Ask | None = None,
    ) -> bytes:
        """The content behind ``link``, exactly as shared; uses one view (see ``reveal``)."""
        return self.reveal(link, key=key, passphrase=passphrase, otp=otp, token=token).content

    def status(self, manage_link: str) -> Receipt:
        """The receipt behind a manage link: state, views, events; never the content."""
        from burnlink.sdk import flows

        return self._transport.run(flows.status(manage_link))

    def burn(self, manage_link: str) -> None:
        """Destroy the secret behind a manage link now (also fine once it has ended)."""
        from burnlink.sdk import flows

        self._transport.run(flows.burn(manage_link))

    def policy(self) -> Policy:
        """The limits the client's server sets on a new secret."""
        if self.server is None:
            raise InvalidInput("server", "is not set; Client(server=...) names the server")
        return self._transport.send(protocol.policy(self.server, self.token))

    def request(
        self,
        description: str,
        *,
        ttl: int | None = None,
        answer_ttl: int | None = None,
        answer_views: int | None = None,
        recipients: Sequence[str] = (),
        wait: bool | float = False,
        timeout: float | None = None,
        on_link: Callable[[Requested], None] | None = None,
    ) -> Requested:
        """Ask for a secret: make a key pair here, create the request, and return its link
        (``url``, to send) and the requester's own link (``requester_url``: it holds the
        private key; keep it, never send it).

        ``wait=True`` long-polls until the answer arrives (at most ``timeout`` seconds, else
        until the request expires), opens it with the private key and returns it as
        ``answer`` (a ``Revealed``: one view of it is used); ``wait=30`` is ``wait=True,
        timeout=30``; ``on_link(requested)`` is called before the wait, with the links to
        send (the request's ``url``) and keep. Raises ``RequestTimedOut`` when the time
        passes, ``RequestExpired`` when the request ends unanswered. ``ttl``: seconds the
        request stays open; ``answer_ttl``, ``answer_views``: the answer's lifetime and
        views; ``recipients``: the emails of who may answer (signed in).
        """
        return self._transport.run(
            self._request(
                description, ttl, answer_ttl, answer_views, recipients, wait, timeout,
                self._timeout, on_link,
            )
        )  # fmt: skip

    def answer(
        self,
        request_link: str,
        content: Secret | PathLike[str],
        *,
        mime: str | None = None,
    ) -> Answered:
        """Answer a request once: ``content`` (text, bytes, a ``Payload``, or a file's path,
        sent as that file) is sealed here to the requester's public key, after checking that
        key against the link's fingerprint (``KeyMismatch``, nothing sent, when the server
        swapped it). ``RequestAnswered`` / ``RequestExpired`` when it no longer takes an
        answer."""
        return self._transport.run(self._answer(request_link, content, mime))


class AsyncClient(_Base):
    """``Client`` for asyncio (or trio): the same methods, awaited. Sealing and opening (PBKDF2
    for a passphrase) run in a worker thread, not on the event loop."""

    def __init__(
        self,
        server: str | None = None,
        *,
        token: str | None = None,
        timeout: float = TIMEOUT,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """As ``Client``."""
        super().__init__(server, token)
        self._timeout = timeout
        self._transport = AsyncTransport(
            timeout=timeout, user_agent=user_agent, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    async def share(
        self,
        secret: Secret,
        *,
        ttl: int | None = None,
        views: int | None = None,
        passphrase: str | None = None,
        filename: str | None = None,
        mime: str | None = None,
        **rules: Unpack[AccessRules],
    ) -> Shared:
        """As ``Client.share``."""
        return await self._transport.run(
            self._share(secret, ttl, views, passphrase, filename, mime, rules)
        )

    async def reveal(
        self,
        link: str,
        *,
        key: str | None = None,
        passphrase: str | Ask | None = None,
        otp: str | Ask | None = None,
        ask_otp: Callable[[str], str | None] | None = None,
        token: str | Ask | None = None,
    ) -> Revealed:
        """As ``Client.reveal``."""
        return await self._transport.run(self._reveal(link, key, passphrase, otp, ask_otp, token))

    async def get(
        self,
        link: str,
        *,
        key: str | None = None,
        passphrase: str | Ask | None = None,
        otp: str | Ask | None = None,
        token: str | Ask | None = None,
    ) -> bytes:
        """As ``Client.get``."""
        revealed = await self.reveal(link, key=key, passphrase=passphrase, otp=otp, token=token)
        return revealed.content

    async def status(self, manage_link: str) -> Receipt:
        """As ``Client.status``."""
        from burnlink.sdk import flows

        return await self._transport.run(flows.status(manage_link))

    async def burn(self, manage_link: str) -> None:
        """As ``Client.burn``."""
        from burnlink.sdk import flows

        await self._transport.run(flows.burn(manage_link))

    async def policy(self) -> Policy:
        """As ``Client.policy``."""
        if self.server is None:
            raise InvalidInput("server", "is not set; AsyncClient(server=...) names the server")
        return await self._transport.send(protocol.policy(self.server, self.token))

    async def request(
        self,
        description: str,
        *,
        ttl: int | None = None,
        answer_ttl: int | None = None,
        answer_views: int | None = None,
        recipients: Sequence[str] = (),
        wait: bool | float = False,
        timeout: float | None = None,  # noqa: ASYNC109 - the same keyword as Client.request
        on_link: Callable[[Requested], None] | None = None,
    ) -> Requested:
        """As ``Client.request``."""
        return await self._transport.run(
            self._request(
                description, ttl, answer_ttl, answer_views, recipients, wait, timeout,
                self._timeout, on_link,
            )
        )  # fmt: skip

    async def answer(
        self,
        request_link: str,
        content: Secret | PathLike[str],
        *,
        mime: str | None = None,
    ) -> Answered:
        """As ``Client.answer``."""
        return await self._transport.run(self._answer(request_link, content, mime))


class ApiClient:
    """One server's API v1, one method per call, typed answers: what ``Client`` is built on,
    for callers that need a single call (the CLI's ``login``, ``whoami``)."""

    def __init__(
        self,
        base: str,
        *,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        api_token: str | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        """``api_token`` (``blk_…``) is sent as the bearer of every call that carries no
        secret's own token: the signed-in user's creates are theirs."""
        self.base = base
        self.api_token = api_token
        self.timeout = timeout
        self._transport = SyncTransport(timeout=timeout, user_agent=user_agent, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def policy(self) -> Policy:
        """``GET /policy``."""
        return self._transport.send(protocol.policy(self.base, self.api_token))

    def create(
        self,
        envelope: Envelope,
        access_token: bytes,
        passphrase_proof: bytes | None,
        *,
        ttl: int | None,
        max_views: int | None,
        rules: Mapping[str, Any] | None = None,
    ) -> Created:
        """``POST /secrets`` with a sealed envelope."""
        call = protocol.create(
            self.base,
            envelope,
            access_token,
            passphrase_proof,
            ttl=ttl,
            max_views=max_views,
            rules=rules,
            user=self.api_token,
        )
        return self._transport.send(call)

    def info(self, secret_id: str, access_token: bytes) -> SecretInfo:
        """``GET /secrets/{id}``; takes no view."""
        return self._transport.send(protocol.info(self.base, secret_id, access_token))

    def consume(
        self,
        secret_id: str,
        access_token: bytes,
        passphrase_proof: bytes | None,
        otp: str | None = None,
    ) -> Consumed:
        """``POST /secrets/{id}/consume``: one view's envelope; ``api_token`` goes beside."""
        call = protocol.consume(
            self.base, secret_id, access_token, passphrase_proof, otp, user=self.api_token
        )
        return self._transport.send(call)

    def receipt(self, secret_id: str, manage_token: bytes) -> Receipt:
        """``GET /secrets/{id}/receipt``."""
        return self._transport.send(protocol.receipt(self.base, secret_id, manage_token))

    def burn(self, secret_id: str, manage_token: bytes) -> None:
        """``DELETE /secrets/{id}``."""
        self._transport.send(protocol.burn(self.base, secret_id, manage_token))

    def me(self) -> Me:
        """Who the API token acts for (``GET /me``); ``InvalidApiToken`` or ``LoginRequired``
        when it does not, ``InvalidInput`` when the server has no sign-in (no such route)."""
        try:
            return self._transport.send(protocol.me(self.base, self.api_token))
        except SecretUnavailable:  # the 404 of a server without sign-in, not a secret's
            raise InvalidInput("--server", "this server has no sign-in") from None

    def revoke_token(self, token_id: str) -> None:
        """``DELETE /me/tokens/{id}``."""
        self._transport.send(protocol.revoke_token(self.base, self.api_token, token_id))


__all__ = ["ApiClient", "AsyncClient", "Client"]
