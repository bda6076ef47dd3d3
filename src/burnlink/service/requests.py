"""``RequestService``: requests for a secret (issue 16), the one home of their rules.

A *requester* asks for a secret: the service stores the requester's P-256 public key, a
description and the rules of the answer, and hands back two random tokens that only digests
of are kept: the **requester's token** (status, waiting, opening the answer) and the
**request link's token** (the answering side's view and its one answer). The answering
side's client seals the secret to the public key (``request_crypto``) and submits it once;
the answer becomes an ordinary secret with the request's id, whose access digest is the
requester token's, created in the same store operation that closes the request
(``store.answer_request``). The requester opens it through ``SecretService.consume``, so
every rule of a secret applies: views, expiry, rate limits, audit, receipt (the answering
side gets its manage token).

Events: ``request.created``, ``request.opened`` (the answering side's view, at most
``OPENED_PER_HOUR`` an hour), ``request.answered`` (with the answer's ``secret.created``; the
request's ``notify_url`` is told ``request.fulfilled`` and its ``notify_email`` is mailed)
and ``request.expired`` (``service.sweep``). Refusals change nothing: a wrong token is the
same ``SecretUnavailable`` as an unknown id (and counts as a failure towards the client's
lockout), a second answer is ``RequestAnswered``, a late one ``RequestExpired``, a malformed
one ``EnvelopeError``, an oversized one ``PayloadTooLarge``.

Waiting (``status(wait=...)``) is a long poll: it wakes as soon as this process stores an
answer, and looks at the store once a ``WAIT_RECHECK`` for answers stored by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from burnlink.audit import Watched
from burnlink.audit.events import AuditEventType
from burnlink.envelope import TAG_BYTES, max_framed_bytes
from burnlink.errors import (
    DuplicateId,
    EnvelopeError,
    InvalidInput,
    LoginRequired,
    MailUnavailable,
    PayloadTooLarge,
    RecipientMismatch,
    RequestAnswered,
    RequestExpired,
    RequestNotAnswered,
    SecretUnavailable,
)
from burnlink.identity.principal import Principal
from burnlink.ids import digest_matches, is_secret_id, new_secret_id, new_token, token_digest
from burnlink.mailer import Mailer
from burnlink.models import AccessPolicy, ClientInfo, SecretRecord
from burnlink.policy import parse_email, parse_recipients, recipient_matches
from burnlink.request_crypto import SealedAnswer, parse_public_key
from burnlink.service.secrets import SecretService
from burnlink.store import SecretStore
from burnlink.store.requests import Answer, RequestRecord, RequestState, StoredRequest

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_WAIT",
    "AnsweredRequest",
    "CreatedRequest",
    "RequestService",
    "RequestStatus",
]

log = logging.getLogger("burnlink.requests")

MAX_DESCRIPTION: Final = 500
"""Longest description, in characters."""
MAX_WAIT: Final = 60
"""Longest long poll, in seconds."""
WAIT_RECHECK: Final = 1.0
"""Seconds between looks at the store while a long poll waits (answers stored elsewhere)."""
OPENED_PER_HOUR: Final = 20
"""``request.opened`` events recorded per request and hour; more are not."""
_TRIES: Final = 3

Identify = Callable[[], Awaitable[Principal | None]]


@dataclass(frozen=True, slots=True)
class CreatedRequest:
    """A new request: its id and the two tokens (returned once, kept as digests)."""

    request_id: str
    requester_token: bytes
    link_token: bytes
    expires_at: datetime
    answer_ttl: int
    answer_views: int


@dataclass(frozen=True, slots=True)
class AnsweredRequest:
    """The stored answer: the secret of the request's id and its manage token."""

    secret_id: str
    manage_token: bytes
    expires_at: datetime
    max_views: int


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """What the requester sees of a request, and of its answer while it lives."""

    request: StoredRequest
    answer_expires_at: datetime | None = None
    answer_views_left: int | None = None


class RequestService:
    """Requests for a secret; see the module docstring."""

    def __init__(self, secrets: SecretService, *, mailer: Mailer | None = None) -> None:
        self.secrets = secrets
        self.mailer = mailer
        send: Callable[[str, str, str], Awaitable[None]] | None = getattr(
            mailer, "send_notice", None
        )
        self._send_notice = send
        self._changed = asyncio.Event()

    @property
    def _store(self) -> SecretStore:
        return self.secrets.store

    # -- creating -----------------------------------------------------------------------

    async def create(
        self,
        *,
        public_key: str,
        description: str,
        ttl: int | None,
        answer_ttl: int | None,
        answer_views: int | None,
        client: ClientInfo,
        recipients: tuple[str, ...] = (),
        notify_url: str | None = None,
        notify_email: str | None = None,
        principal: Principal | None = None,
    ) -> CreatedRequest:
        """Store a request; its rules are those of a create (``BURNLINK_CREATE_*``, the create
        rate and addresses), its limits those of a secret (``ttl`` for the request and
        ``answer_ttl``, ``answer_views`` for its answer)."""
        svc = self.secrets
        settings = svc.settings
        svc.create_policy.check(principal)
        key = parse_public_key(public_key, "public_key")
        description = check_description(description)
        ttl, _ = svc.check_limits(ttl, 1)
        try:
            answer_ttl, answer_views = svc.check_limits(answer_ttl, answer_views)
        except InvalidInput as exc:
            raise InvalidInput("answer_" + exc.field, exc.reason) from None
        recipients = parse_recipients(recipients)
        if recipients and not settings.sign_in:
            raise InvalidInput(
                "recipients", "sign-in is not configured on this server (BURNLINK_OIDC_ISSUER)"
            )
        if notify_email is not None:
            if self._send_notice is None:
                raise InvalidInput(
                    "notify_email", "email is not configured on this server (BURNLINK_SMTP_URL)"
                )
            notify_email = parse_email(notify_email, field="notify_email")
        client = svc.locate(client)
        now = svc.clock.now()
        checks = await svc.access.before_create(AccessPolicy(), True, client, now=now)
        await svc.access.count(checks, client, now=now)
        if notify_url is not None:
            await svc.reporter.check_notify_url(notify_url)
        requester_token, link_token = new_token(), new_token()
        for _ in range(_TRIES):
            request_id = new_secret_id()
            record = RequestRecord(
                request_id=request_id,
                requester_digest=token_digest(requester_token),
                answer_digest=token_digest(link_token),
                public_key=key,
                description=description,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
                answer_ttl=answer_ttl,
                answer_views=answer_views,
                recipients=recipients,
                notify_url=notify_url,
                notify_email=notify_email,
                owner=None if principal is None else principal.subject,
                owner_email=None if principal is None else principal.email,
            )
            event, recorded = svc.reporter.happened(
                AuditEventType.REQUEST_CREATED,
                at=now,
                secret_id=request_id,
                client=client,
                detail={
                    "ttl": ttl,
                    "answer_ttl": answer_ttl,
                    "answer_views": answer_views,
                    "recipients": len(recipients),
                    "notify": notify_url is not None,
                    "email": notify_email is not None,
                },
                actor=None if principal is None else (principal.subject, principal.email),
            )
            try:
                await self._store.create_request(record, events=[recorded])
                break
            except DuplicateId:  # 128 random bits: in practice never, but never overwrite
                continue
        else:
            raise DuplicateId("could not allocate a fresh id")
        svc.reporter.recorded()
        await svc.reporter.publish(event, secret_id=request_id)
        return CreatedRequest(
            request_id, requester_token, link_token, record.expires_at, answer_ttl, answer_views
        )

    # -- the answering side ---------------------------------------------------------------

    async def _find(
        self, request_id: str, token: bytes, client: ClientInfo, *, requester: bool
    ) -> StoredRequest:
        """The request if ``token`` is its requester's (or its link's); else, like an unknown
        id, ``SecretUnavailable``, counted as a failure towards the client's lockout. A client
        past its failure limits is refused first (``RateLimited``)."""
        svc = self.secrets
        now = svc.clock.now()
        checks = svc.access.limiter.checks(
            "reveal", svc.settings.limit("reveal"), client.ip, failures=True
        )
        await svc.access.count(checks, client, now=now)
        found = None
        if is_secret_id(request_id):
            found = await self._store.get_request(request_id, now=now)
        stored = b"\0" * 32
        if found is not None:
            record = found.record
            stored = record.requester_digest if requester else record.answer_digest
        if not digest_matches(token, stored) or found is None:
            await svc.access.failed(client, now=now)
            raise SecretUnavailable
        return found

    async def _check_answerer(self, found: StoredRequest, identify: Identify | None) -> None:
        """For a request bound to recipients: the signed-in user must be one of them."""
        recipients = found.record.recipients
        if not recipients:
            return
        principal = None if identify is None else await identify()
        if principal is None:
            raise LoginRequired("This request is for signed-in recipients; sign in to answer.")
        if recipient_matches(recipients, principal.email, principal.groups) is None:
            raise RecipientMismatch

    async def view(
        self,
        request_id: str,
        link_token: bytes,
        *,
        client: ClientInfo,
        identify: Identify | None = None,
    ) -> StoredRequest:
        """The request as the answering side sees it (``request.opened`` is recorded)."""
        client = self.secrets.locate(client)
        found = await self._find(request_id, link_token, client, requester=False)
        await self._check_answerer(found, identify)
        if found.state is RequestState.OPEN:
            await self._opened(request_id, client)
        return found

    async def _opened(self, request_id: str, client: ClientInfo) -> None:
        svc = self.secrets
        now = svc.clock.now()
        seen = await self._store.hit(f"request-opened:{request_id}", window=3600, now=now)
        if seen <= OPENED_PER_HOUR:
            await svc.reporter.emit(
                AuditEventType.REQUEST_OPENED, at=now, secret_id=request_id, client=client
            )

    async def answer(
        self,
        request_id: str,
        link_token: bytes,
        sealed: object,
        *,
        client: ClientInfo,
        identify: Identify | None = None,
    ) -> AnsweredRequest:
        """Store the one answer (see the module docstring for the refusals)."""
        svc = self.secrets
        client = svc.locate(client)
        found = await self._find(request_id, link_token, client, requester=False)
        await self._check_answerer(found, identify)
        _refuse_closed(found)
        answer = SealedAnswer.from_json(sealed)
        if not hmac.compare_digest(answer.requester_public, found.record.public_key):
            raise EnvelopeError(
                "is not this request's public key; seal the answer to the key the request"
                " link's fingerprint names",
                "answer.rpk",
            )
        if len(answer.ciphertext) - TAG_BYTES > max_framed_bytes(svc.settings.max_bytes):
            raise PayloadTooLarge(svc.settings.max_bytes, field="answer.ct")
        now = svc.clock.now()
        checks = svc.access.limiter.checks("create", svc.settings.limit("create"), client.ip)
        await svc.access.count(checks, client, now=now)
        principal = None if identify is None or not found.record.recipients else await identify()
        actor = None if principal is None else (principal.subject, principal.email)
        request = found.record
        manage_token = new_token()
        expires_at = now + timedelta(seconds=request.answer_ttl)
        policy = AccessPolicy(notify_url=request.notify_url, creator_country=client.country)
        record = SecretRecord(
            secret_id=request_id,
            envelope=answer.to_bytes(),
            access_digest=request.requester_digest,
            manage_digest=token_digest(manage_token),
            created_at=now,
            expires_at=expires_at,
            max_views=request.answer_views,
            max_attempts=svc.settings.passphrase_attempts,
            policy=policy,
        )
        created, created_kept = svc.reporter.happened(
            AuditEventType.SECRET_CREATED,
            at=now,
            secret_id=request_id,
            client=client,
            detail={
                "ttl": request.answer_ttl,
                "max_views": request.answer_views,
                "protected": False,
                "notify": request.notify_url is not None,
                "request": True,
            },
            watch=Watched(request_id, expires_at, request.notify_url),
            actor=actor,
        )
        answered, answered_kept = svc.reporter.happened(
            AuditEventType.REQUEST_ANSWERED,
            at=now,
            secret_id=request_id,
            client=client,
            detail={"answer_ttl": request.answer_ttl, "answer_views": request.answer_views},
            actor=actor,
        )
        done = await self._store.answer_request(
            record, now=now, events=[created_kept, answered_kept]
        )
        if done is Answer.TAKEN:
            raise RequestAnswered
        if done is Answer.EXPIRED:
            raise RequestExpired
        if done is Answer.GONE:
            raise SecretUnavailable
        svc.reporter.recorded()
        self._wake()
        await svc.reporter.publish(created, secret_id=request_id)
        await svc.reporter.publish(answered, secret_id=request_id, notify_url=request.notify_url)
        if request.notify_email is not None:
            address = request.notify_email
            svc.reporter.later(lambda: self._mail(address, request_id))
        return AnsweredRequest(request_id, manage_token, expires_at, request.answer_views)

    async def _mail(self, address: str, request_id: str) -> None:
        if self._send_notice is None:
            return
        try:
            await self._send_notice(
                address,
                "Your burnlink request was answered",
                f"Your burnlink request {request_id} has been answered.\n\n"
                "Open it from the link you kept when you made the request (or the command"
                " that is waiting for it). The answer opens a limited number of times and"
                " expires; nobody else, the server included, can read it.\n",
            )
        except MailUnavailable as exc:
            log.warning("request notice not mailed: %s", exc)

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the requester --------------------------------------------------------------------

    async def status(
        self, request_id: str, requester_token: bytes, *, client: ClientInfo, wait: float = 0
    ) -> RequestStatus:
        """The request and its answer for its requester. With ``wait`` (at most ``MAX_WAIT``
        seconds), an open request is watched until it is answered or expires, or ``wait``
        passes, whichever comes first."""
        if not 0 <= wait <= MAX_WAIT:
            raise InvalidInput("wait", f"must be from 0 to {MAX_WAIT} seconds")
        svc = self.secrets
        client = svc.locate(client)
        found = await self._find(request_id, requester_token, client, requester=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while found.state is RequestState.OPEN:
            until_expiry = (found.record.expires_at - svc.clock.now()).total_seconds()
            left = min(deadline - loop.time(), until_expiry)
            if left <= 0:
                break
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(left, WAIT_RECHECK))
            again = await self._store.get_request(request_id, now=svc.clock.now())
            if again is None:
                raise SecretUnavailable
            found = again
        if found.state is not RequestState.ANSWERED:
            return RequestStatus(found)
        meta = await self._store.peek(request_id, now=svc.clock.now())
        if meta is None:
            return RequestStatus(found)
        return RequestStatus(found, meta.expires_at, meta.views_left)

    async def open(
        self,
        request_id: str,
        requester_token: bytes,
        *,
        client: ClientInfo,
    ) -> tuple[dict[str, Any], int]:
        """Take one view of the answer (``SecretService.consume``: every rule of a secret);
        return the sealed answer and the views left."""
        svc = self.secrets
        found = await self._find(request_id, requester_token, svc.locate(client), requester=True)
        if found.state is RequestState.OPEN:
            raise RequestNotAnswered
        if found.state is RequestState.EXPIRED:
            raise RequestExpired
        consumed = await svc.consume(request_id, requester_token, None, client=client)
        return SealedAnswer.from_bytes(consumed.envelope).to_json(), consumed.views_left


def check_description(text: str) -> str:
    """A description: 1 to ``MAX_DESCRIPTION`` characters once trimmed, no control or format
    characters but line breaks and tabs; else ``InvalidInput``."""
    text = text.strip()
    if not text:
        raise InvalidInput("description", "must say what is requested")
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput("description", f"must be at most {MAX_DESCRIPTION} characters")
    if any(unicodedata.category(c).startswith("C") and c not in "\n\t" for c in text):
        raise InvalidInput("description", "must not contain control or format characters")
    return text


def _refuse_closed(found: StoredRequest) -> None:
    if found.state is RequestState.ANSWERED:
        raise RequestAnswered
    if found.state is RequestState.EXPIRED:
        raise RequestExpired
