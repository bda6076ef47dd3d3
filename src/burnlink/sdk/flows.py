"""What ``share`` and ``get`` do, step by step, written once for the sync and async clients.

Each flow is a generator of ``protocol`` steps (``burnlink.sdk.protocol.Flow``): calls to the
server and CPU-bound work; a client runs it (``burnlink.sdk.transport``). Everything secret
(the link key, the passphrase, the content) stays in the flow: the server gets the envelope
and tokens derived from the key, as docs/crypto.md specifies.
"""

from __future__ import annotations

import math
import mimetypes
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from burnlink.crypto import Payload, derive_keys, new_link_key, open_envelope, seal
from burnlink.envelope import Envelope, check_content_size
from burnlink.errors import (
    EnvelopeError,
    InvalidInput,
    KeyMismatch,
    LoginRequired,
    PassphraseRequired,
    PayloadTooLarge,
    RequestAnswered,
    RequestExpired,
    RequestTimedOut,
    VerificationFailed,
    VerificationRequired,
)
from burnlink.ids import b64url_encode
from burnlink.links import parse_manage_link, parse_request_link, parse_secret_link, secret_link
from burnlink.request_crypto import (
    KeyPair,
    check_fingerprint,
    open_answer,
    parse_public_key,
    seal_answer,
)
from burnlink.sdk import protocol
from burnlink.sdk.models import Answered, Consumed, Receipt, Requested, Revealed, Shared
from burnlink.sdk.protocol import Flow, Work, do

Ask = Callable[[], str | None]
"""Asked only when needed: returns the value, or ``None`` when there is none."""
Secret = str | bytes | Payload
"""What ``share`` takes: text, bytes, or a framed ``Payload`` (text or a file)."""

_OTP_RE = re.compile(r"[0-9]{6}")


def payload_of(secret: Secret, *, filename: str | None = None, mime: str | None = None) -> Payload:
    """``secret`` as a payload: ``str`` is text; ``bytes`` are a file when ``filename`` or
    ``mime`` is given or they are not UTF-8, else text (as the CLI treats piped input)."""
    if isinstance(secret, Payload):
        payload = secret
    elif isinstance(secret, str):
        if filename is not None or mime is not None:
            raise InvalidInput("filename", "is for bytes; text is shared as text")
        payload = Payload(secret.encode("utf-8"))
    elif filename is not None or mime is not None:
        guessed = mimetypes.guess_type(filename)[0] if filename else None
        payload = Payload(
            bytes(secret),
            is_file=True,
            name=filename,
            mime=mime or guessed or "application/octet-stream",
        )
    else:
        try:
            bytes(secret).decode("utf-8")
        except UnicodeDecodeError:
            payload = Payload(bytes(secret), is_file=True)
        else:
            payload = Payload(bytes(secret))
    if not payload.content:
        raise InvalidInput("secret", "is empty; there is nothing to share")
    return payload


def share(
    base: str,
    payload: Payload,
    *,
    ttl: int | None,
    views: int | None,
    passphrase: str | None,
    rules: Mapping[str, Any],
    user: str | None,
) -> Flow[Shared]:
    """Seal ``payload`` here with a new link key, store the envelope, return the links."""
    if passphrase is not None and not passphrase:
        raise InvalidInput("passphrase", "is empty")
    # The server's own limits, as the page reads them: its size limit is checked here so that
    # nothing is sent, and its PBKDF2 minimum may be above envelope v1's.
    policy = yield from do(protocol.policy(base, user))
    try:
        check_content_size(len(payload.content), policy.max_bytes)
    except PayloadTooLarge as exc:
        exc.code = "payload_too_large"  # as the server would answer; nothing was sent
        raise
    link_key = new_link_key()
    sealed = yield from do(
        Work(
            lambda: seal(
                payload, link_key, passphrase=passphrase, iterations=policy.pbkdf2_iterations
            )
        )
    )
    created = yield from do(
        protocol.create(
            base,
            sealed.envelope,
            sealed.keys.access_token,
            sealed.keys.passphrase_proof,
            ttl=ttl,
            max_views=views,
            rules={name: value for name, value in rules.items() if value},
            user=user,
        )
    )
    return Shared(
        url=secret_link(created.url, link_key),
        manage_url=created.manage_url,
        id=created.id,
        expires_at=created.expires_at,
        max_views=created.max_views,
    )


def reveal(
    link: str,
    *,
    key: str | None = None,
    passphrase: str | Ask | None = None,
    otp: str | Ask | None = None,
    ask_otp: Callable[[str], str | None] | None = None,
    user: str | Ask | None = None,
) -> Flow[Revealed]:
    """Take one view of the secret behind ``link`` and open it here.

    ``passphrase`` is asked (when a callable) only for a protected secret; without one such a
    secret raises ``PassphraseRequired`` and no view is used. ``otp`` is the code mailed to the
    recipient (a callable is asked only when the secret needs one); without it, the server
    mails a code and ``ask_otp(hint)`` is asked for it, else ``VerificationRequired`` (with
    ``hint``) is raised. ``user`` is the recipient's API token, sent only once the server
    answers that the secret needs a signed-in recipient.
    """
    parsed = parse_secret_link(link, key)
    keys = derive_keys(parsed.token)
    info = yield from do(protocol.info(parsed.base, parsed.secret_id, keys.access_token))
    if info.passphrase is not None:
        phrase = passphrase() if callable(passphrase) else passphrase
        if phrase is None:
            required = PassphraseRequired(info.attempts_left)
            required.code = "passphrase_required"  # as the server would answer; no view used
            raise required
        params = info.passphrase
        keys = yield from do(
            Work(
                lambda: derive_keys(
                    parsed.token,
                    passphrase=phrase,
                    salt=params.salt,
                    iterations=params.iterations,
                    access=keys.access_token,
                )
            )
        )
    signed_in: list[str] = []  # the API token, once the secret asked for a signed-in user

    def consume(code: str | None) -> Flow[Consumed]:
        def call() -> protocol.Call[Consumed]:
            return protocol.consume(
                parsed.base,
                parsed.secret_id,
                keys.access_token,
                keys.passphrase_proof,
                code,
                user=signed_in[0] if signed_in else None,
            )

        try:
            return (yield from do(call()))
        except LoginRequired:
            token = user() if callable(user) else user
            if token is None or signed_in:
                raise
            signed_in.append(token)
        return (yield from do(call()))

    code = otp if isinstance(otp, str) else None
    consumed: Consumed | None = None
    if info.verification_hint is not None and code is None:
        code = otp() if callable(otp) else None
        if code is None:
            try:
                consumed = yield from consume(None)  # the server mails a code
            except VerificationRequired as exc:
                if isinstance(exc, VerificationFailed) or ask_otp is None:
                    raise  # no code left to ask for (the secret was locked), or none to ask
                code = ask_otp(exc.hint)
                if code is None:
                    raise
    if consumed is None:
        consumed = yield from consume(_checked_otp(code) if code else None)
    view, final_keys = consumed, keys
    payload = yield from do(
        Work(lambda: open_envelope(Envelope.from_json(view.envelope), final_keys))
    )
    return Revealed(
        content=payload.content,
        views_left=view.views_left,
        is_file=payload.is_file,
        name=payload.name,
        mime=payload.mime,
    )


def _checked_otp(code: str) -> str:
    if not _OTP_RE.fullmatch(code.strip()):
        raise InvalidInput("otp", "must be the 6 digits of the mailed code")
    return code.strip()


def status(manage_link: str) -> Flow[Receipt]:
    """The receipt of the secret behind ``manage_link``."""
    parsed = parse_manage_link(manage_link)
    return (yield from do(protocol.receipt(parsed.base, parsed.secret_id, parsed.token)))


def burn(manage_link: str) -> Flow[None]:
    """Destroy the secret behind ``manage_link`` now."""
    parsed = parse_manage_link(manage_link)
    yield from do(protocol.burn(parsed.base, parsed.secret_id, parsed.token))


# --- requests for a secret (docs/sdk.md § Requests) --------------------------------------------

MAX_POLL = 60
"""The longest long poll the API allows (seconds)."""


def request(
    base: str,
    description: str,
    *,
    ttl: int | None,
    answer_ttl: int | None,
    answer_views: int | None,
    recipients: tuple[str, ...],
    wait: float | None,
    call_timeout: float,
    user: str | None,
    on_link: Callable[[Requested], None] | None = None,
) -> Flow[Requested]:
    """Make a key pair here, ask for a secret, and with ``wait`` (seconds; ``inf``: until the
    request expires) long-poll for the answer, then open it with the private key.

    ``on_link(made)`` is called with the links before the wait, to send the request link.
    The private key stays in this flow and in ``requester_url``'s fragment; the server gets the
    public key only. Raises ``RequestTimedOut`` when ``wait`` passes, ``RequestExpired`` when the
    request's time runs out first.
    """
    if not description.strip():
        raise InvalidInput("description", "is empty; say what you need")
    keys = yield from do(Work(KeyPair.generate))
    asked = yield from do(
        protocol.ask(
            base,
            keys.public,
            description,
            ttl=ttl,
            answer_ttl=answer_ttl,
            answer_views=answer_views,
            recipients=recipients,
            user=user,
        )
    )
    link = f"{asked.url}#{b64url_encode(keys.fingerprint)}.{b64url_encode(asked.link_token)}"
    mine = f"{asked.requester_url}#{b64url_encode(asked.requester_token)}.{keys.to_text()}"
    made = Requested(url=link, requester_url=mine, id=asked.id, expires_at=asked.expires_at)
    if wait is None:
        return made
    if on_link is not None:
        on_link(made)  # the link goes out before the wait: whoever answers needs it
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RequestTimedOut(
                f"no answer within {wait:g} seconds; the request stays open until"
                f" {asked.expires_at} (its requester_url still opens it)",
                asked.expires_at,
            )
        poll = max(1, min(MAX_POLL, math.ceil(left)))
        state = yield from do(
            protocol.request_status(
                base, asked.id, asked.requester_token, wait=poll, timeout=call_timeout
            )
        )
        if state == "answered":
            break
        if state == "expired":
            raise RequestExpired
    sealed, views_left = yield from do(protocol.open_request(base, asked.id, asked.requester_token))
    payload = yield from do(Work(lambda: open_answer(sealed, keys, asked.id)))
    revealed = Revealed(
        content=payload.content,
        views_left=views_left,
        is_file=payload.is_file,
        name=payload.name,
        mime=payload.mime,
    )
    return Requested(
        url=link, requester_url=mine, id=asked.id, expires_at=asked.expires_at, answer=revealed
    )


def answer(request_link: str, payload: Payload, *, user: str | None) -> Flow[Answered]:
    """Answer the request behind ``request_link`` once with ``payload``, sealed here to the
    requester's public key; a key that is not the one the link's fingerprint names is refused
    (``KeyMismatch``) before anything is sent."""
    parsed = parse_request_link(request_link)
    shown = yield from do(
        protocol.view_request(parsed.base, parsed.request_id, parsed.link_token, user)
    )
    try:
        public = parse_public_key(shown.public_key, "public_key")
        check_fingerprint(public, parsed.fingerprint)
    except EnvelopeError:
        raise KeyMismatch(
            "the server handed out a public key that is not the one this request link"
            " names; nothing was sent (the server, or something between, swapped it)"
        ) from None
    if shown.state == "answered":
        raise RequestAnswered
    if shown.state == "expired":
        raise RequestExpired
    if shown.max_bytes is not None:
        try:
            check_content_size(len(payload.content), shown.max_bytes)
        except PayloadTooLarge as exc:
            exc.code = "payload_too_large"  # as the server would answer; nothing was sent
            raise
    sealed = yield from do(
        Work(
            lambda: seal_answer(
                payload, public, parsed.request_id, expected_fingerprint=parsed.fingerprint
            )
        )
    )
    done = yield from do(
        protocol.submit_answer(parsed.base, parsed.request_id, parsed.link_token, sealed, user)
    )
    return Answered(
        id=done.id, manage_url=done.manage_url, expires_at=done.expires_at, max_views=done.max_views
    )
