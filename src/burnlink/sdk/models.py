"""What the SDK's calls return: frozen, typed records of the API's answers (docs/sdk.md).

None of them prints a key, token or content in its ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


class AccessRules(TypedDict, total=False):
    """The access rules a new secret may carry (docs/api.md § POST /api/v1/secrets); the
    server validates them. Empty values are not sent."""

    allowed_ips: list[str]
    """Addresses or networks (CIDR) that may reveal it."""
    allowed_countries: list[str]
    """ISO 3166 country codes that may reveal it."""
    denied_countries: list[str]
    """ISO 3166 country codes that may not."""
    recipient_email: str
    """A recipient who must enter a code mailed to this address (the server needs SMTP)."""
    recipients: list[str]
    """Signed-in recipients: ``user@example.com``, ``group:NAME``, ``domain:example.com``."""
    require_mfa: bool
    """With ``recipients``: the recipient's sign-in must carry a fresh second factor."""
    label: str
    """The sender's own name for the secret (never the content)."""
    notify_url: str
    """A webhook told of each view, the burn, the lockout and the expiry."""


@dataclass(frozen=True, slots=True)
class Shared:
    """A shared secret: the link to send, and the manage link to keep (status, burn)."""

    url: str = field(repr=False)
    """The secret link, ``{base}/s/{id}#{key}``: whoever holds it can take a view."""
    manage_url: str = field(repr=False)
    """``{base}/m/{id}#{token}``: the receipt and the burn. Keep it private."""
    id: str
    expires_at: str
    max_views: int


@dataclass(frozen=True, slots=True)
class Revealed:
    """One view of a secret, opened on this machine."""

    content: bytes = field(repr=False)
    """The exact bytes that were shared."""
    views_left: int
    """Views still allowed after this one; at 0 the secret is gone."""
    is_file: bool = False
    name: str | None = None
    """The file name, for a shared file that had one."""
    mime: str | None = None
    """The media type, for a shared file."""

    def text(self) -> str:
        """The content as text; raises ``UnicodeDecodeError`` if it is not UTF-8."""
        return self.content.decode("utf-8")

    def answer(self) -> dict[str, Any]:
        """The reveal as the API's curl mode answers it: ``secret`` (text) or ``file``
        (``name``, ``mime``, ``content_base64``), and ``views_left``."""
        from burnlink.crypto import Payload

        payload = Payload(self.content, is_file=self.is_file, name=self.name, mime=self.mime)
        return {**payload.answer(), "views_left": self.views_left}


@dataclass(frozen=True, slots=True)
class Created:
    """A created secret. ``url`` has no key; ``manage_url`` carries the manage token."""

    id: str
    url: str
    manage_url: str = field(repr=False)
    expires_at: str
    max_views: int


@dataclass(frozen=True, slots=True)
class Policy:
    """What a server's ``GET /policy`` says a new secret must respect."""

    max_bytes: int
    """The most content bytes a secret may have (``BURNLINK_MAX_BYTES``)."""
    pbkdf2_iterations: int
    """The fewest PBKDF2 iterations the server accepts for a passphrase."""


@dataclass(frozen=True, slots=True)
class PassphraseParams:
    """How to stretch the passphrase of a protected secret."""

    kdf: str
    iterations: int
    salt: bytes


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What the holder of a link learns before taking a view."""

    attempts_left: int
    passphrase: PassphraseParams | None
    verification_hint: str | None = None
    """Where a one-time code goes, masked (``b***@example.com``), when one is required."""


@dataclass(frozen=True, slots=True)
class Consumed:
    """One view: the envelope to open on this machine, and the views left after it."""

    envelope: dict[str, Any] = field(repr=False)
    views_left: int


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in recipient a receipt event names, as their identity provider vouched."""

    email: str | None
    mfa: bool
    """Whether their sign-in carried a second factor."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a receipt. ``ip`` and ``user_agent`` come from whoever made the request."""

    at: str
    type: str
    ip: str | None
    user_agent: str | None
    country: str | None = None
    agent: str | None = None
    """What kind of client it was, as ``Name (class)``: ``Slackbot (preview)``."""
    viewer: Viewer | None = None
    """The signed-in recipient it was made for (a secret bound to recipients); ``None`` when
    anonymous, or from a server that does not name viewers."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The sender's receipt: state, counts and events, never content."""

    id: str
    state: str
    created_at: str
    expires_at: str
    ended_at: str | None
    max_views: int
    views_used: int
    views_left: int
    events: tuple[Event, ...]
    statement: dict[str, Any] | None = None
    """The server's signed proof of destruction, once the secret has ended."""


@dataclass(frozen=True, slots=True)
class Me:
    """Who a token (or session) acts for, as ``GET /api/v1/me`` says."""

    subject: str
    email: str | None
    groups: tuple[str, ...]
    via: str
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class AskedRequest:
    """What the server answered to a new request (``POST /requests``)."""

    id: str
    url: str
    """The request link without its fragment."""
    requester_url: str
    """The requester's own link without its fragment."""
    link_token: bytes = field(repr=False)
    requester_token: bytes = field(repr=False)
    expires_at: str


@dataclass(frozen=True, slots=True)
class RequestView:
    """What the answerer sees of a request (``GET /requests/{id}``)."""

    public_key: object = field(repr=False)
    """As the server sent it; checked against the link's fingerprint before any use."""
    state: str
    description: str
    max_bytes: int | None


@dataclass(frozen=True, slots=True)
class Requested:
    """A request made by ``Client.request``: the link to send, and the answer once waited for.

    ``requester_url`` holds the private key in its fragment: keep it (it opens the answer in a
    browser), never send it."""

    url: str = field(repr=False)
    """The request link, ``{base}/r/{id}#{fingerprint}.{token}``: send it to who answers."""
    requester_url: str = field(repr=False)
    id: str
    expires_at: str
    answer: Revealed | None = None
    """The opened answer, when ``request(wait=...)`` waited for it; else ``None``."""


@dataclass(frozen=True, slots=True)
class Answered:
    """What ``Client.answer`` stored: the answer's id and its receipt (manage) link."""

    id: str
    manage_url: str
    expires_at: str
    max_views: int
