"""The audit hash chain: MACs that make edits, deletions and reordering of entries visible.

Format
    Entry ``seq`` (1, 2, 3, …) carries ``prev_mac`` (the MAC of entry ``seq - 1``; 32 zero
    bytes for entry 1) and ``mac = HMAC-SHA256(key, prev_mac || canonical(event) ||
    seq as 8 bytes big-endian)``. Both ends of the MAC input have a fixed length, so the
    concatenation is unambiguous. Without the key nobody can make a MAC, so an entry cannot be
    changed, inserted, moved or removed (other than from the end) without ``verify`` noticing.

State
    Each store keeps one state row beside the entries: the *base* (the ``seq`` and ``mac`` of
    the last purged entry, or ``0`` and zeros), the *head* (the last appended entry), when the
    last purge cut off, and an id of the key. The row is authenticated by its own MAC (over a
    distinct label), so a purge can drop the oldest entries and leave the rest verifiable from
    the base, while deleting entries and moving the base or head to hide it needs the key.
    What no MAC can show is a rollback of the whole database to an older copy, or the state
    row and the tail deleted together and a fresh log started: the database cannot vouch for
    its own completeness. Anchors outside it can: signed checkpoints of the head
    (``audit.checkpoint``) or the last ``seq`` an operator recorded (``Anchor``), and entries
    shipped elsewhere as they happen (``export.JsonLinesSink``).

Completeness
    ``audit.verify.verify_store`` only reads. It fails when there is no log at all, when the
    state row is missing or unauthentic, when any entry lies outside ``base < seq <= head``
    (an entry forged past the head, or one left behind the base), when an entry in between
    is altered, missing or moved, and when the head is behind an anchor.

Keys
    ``BURNLINK_AUDIT_KEY`` (``parse_key``) or a 0600 key file made on first start
    (``load_or_create_key``). The key never changes for a log: a store refuses to open with a
    key whose id differs from the one the log was started with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from burnlink.audit.events import AuditEvent, canonical_json, format_time
from burnlink.errors import ConfigError, StorageError
from burnlink.ids import key_id

__all__ = [
    "GENESIS",
    "KEY_BYTES",
    "MAC_BYTES",
    "Anchor",
    "AuditEntry",
    "ChainBounds",
    "ChainHead",
    "ChainState",
    "CorruptEntry",
    "Problem",
    "VerifyResult",
    "averify",
    "entry_is_authentic",
    "entry_mac",
    "load_or_create_key",
    "next_entries",
    "next_entry",
    "parse_key",
    "read_or_create_private_file",
    "seal_state",
    "state_is_authentic",
    "verify",
]

MAC_BYTES: Final = 32
KEY_BYTES: Final = 32
"""Length of a generated key; ``parse_key`` accepts at least this many bytes."""

REORDER_WINDOW: Final = 1024
"""How far (in ``seq``) ``verify`` looks for the place an out-of-place entry belongs to."""

_STATE_LABEL: Final = b"burnlink audit state v1\x00"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A position in the chain: an entry's ``seq`` and ``mac`` (``GENESIS`` before entry 1)."""

    seq: int
    mac: bytes


GENESIS: Final = ChainHead(seq=0, mac=bytes(MAC_BYTES))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event as stored: its place in the chain and the MACs that pin it there."""

    seq: int
    event: AuditEvent
    prev_mac: bytes
    mac: bytes

    @property
    def head(self) -> ChainHead:
        """This entry as a chain position."""
        return ChainHead(self.seq, self.mac)


@dataclass(frozen=True, slots=True)
class ChainState:
    """The state row of a store: base (last purged), head (last appended), and its MAC."""

    base: ChainHead
    head: ChainHead
    purged_before: datetime | None
    key_id: str
    mac: bytes

    def advanced(self, key: bytes, *, head: ChainHead) -> ChainState:
        """This state with a new head, re-sealed."""
        return seal_state(key, base=self.base, head=head, purged_before=self.purged_before)

    def rebased(self, key: bytes, *, base: ChainHead, purged_before: datetime) -> ChainState:
        """This state after a purge up to ``base``, re-sealed."""
        return seal_state(key, base=base, head=self.head, purged_before=purged_before)


class CorruptEntry(StorageError):
    """Raised when a stored entry cannot be parsed or disagrees with its own row."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"audit entry {seq} is corrupt")
        self.seq = seq


def entry_mac(
    key: bytes, prev_mac: bytes, event: AuditEvent, seq: int, *, canonical: bytes | None = None
) -> bytes:
    """``HMAC-SHA256(key, prev_mac || canonical(event) || seq as 8 bytes big-endian)``;
    ``canonical``, when given, must be ``event.canonical()`` (then it is not rebuilt)."""
    body = event.canonical() if canonical is None else canonical
    message = prev_mac + body + seq.to_bytes(8, "big")
    return hmac.new(key, message, hashlib.sha256).digest()


def next_entry(
    key: bytes, head: ChainHead, event: AuditEvent, *, canonical: bytes | None = None
) -> AuditEntry:
    """The entry that appends ``event`` after ``head`` (``canonical`` as for ``entry_mac``)."""
    seq = head.seq + 1
    mac = entry_mac(key, head.mac, event, seq, canonical=canonical)
    return AuditEntry(seq=seq, event=event, prev_mac=head.mac, mac=mac)


def next_entries(
    key: bytes,
    head: ChainHead,
    events: Iterable[AuditEvent],
    *,
    canonicals: Iterable[bytes] | None = None,
) -> list[AuditEntry]:
    """The entries that append ``events``, in order, after ``head``; ``canonicals``, when
    given, are the events' ``canonical()`` bytes, in the same order.

    The key is set up once (``hmac.new`` without a message) and copied for each entry, which
    spares each MAC hashing the padded key again."""
    events = list(events)
    if canonicals is None:
        canonicals = [event.canonical() for event in events]
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    entries: list[AuditEntry] = []
    seq, prev_mac = head.seq, head.mac
    for event, canonical in zip(events, canonicals, strict=True):
        seq += 1
        mac = keyed.copy()
        mac.update(prev_mac + canonical + seq.to_bytes(8, "big"))
        entry = AuditEntry(seq=seq, event=event, prev_mac=prev_mac, mac=mac.digest())
        entries.append(entry)
        prev_mac = entry.mac
    return entries


def _state_mac(
    key: bytes, base: ChainHead, head: ChainHead, purged_before: datetime | None, kid: str
) -> bytes:
    body = canonical_json(
        {
            "base_seq": base.seq,
            "base_mac": base.mac.hex(),
            "head_seq": head.seq,
            "head_mac": head.mac.hex(),
            "purged_before": None if purged_before is None else format_time(purged_before),
            "key_id": kid,
        }
    )
    return hmac.new(key, _STATE_LABEL + body, hashlib.sha256).digest()


def seal_state(
    key: bytes,
    *,
    base: ChainHead = GENESIS,
    head: ChainHead = GENESIS,
    purged_before: datetime | None = None,
) -> ChainState:
    """A state row for ``key`` with its MAC (the empty log's state with the defaults)."""
    kid = key_id(key)
    return ChainState(
        base=base,
        head=head,
        purged_before=purged_before,
        key_id=kid,
        mac=_state_mac(key, base, head, purged_before, kid),
    )


def state_is_authentic(state: ChainState, key: bytes) -> bool:
    """Whether ``state`` carries a valid MAC under ``key`` and names ``key``."""
    expected = _state_mac(key, state.base, state.head, state.purged_before, state.key_id)
    return hmac.compare_digest(expected, state.mac) and state.key_id == key_id(key)


def entry_is_authentic(entry: AuditEntry, key: bytes) -> bool:
    """Whether ``entry``'s MAC matches its content, its ``prev_mac`` and its ``seq``."""
    return hmac.compare_digest(entry_mac(key, entry.prev_mac, entry.event, entry.seq), entry.mac)


@dataclass(frozen=True, slots=True)
class ChainBounds:
    """What a store holds, read in one snapshot: its state row and the span of its entries."""

    state: ChainState | None
    """The state row; ``None`` when the row (or its table) is missing."""
    first_seq: int | None
    """The lowest ``seq`` stored (``None``: no entries)."""
    last_seq: int | None
    """The highest ``seq`` stored."""
    count: int
    """How many entries are stored."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A head recorded outside the database that the log must still reach.

    ``mac`` is ``None`` when only the ``seq`` is known (``audit verify --expect-head``); a
    signed checkpoint gives both, and then the entry at ``seq`` must be that very entry.
    """

    seq: int
    mac: bytes | None
    source: str
    """What recorded it, for messages: ``the checkpoint`` or ``--expect-head``."""


# -- verification -------------------------------------------------------------------------


class Problem(StrEnum):
    """The first thing ``verify`` found wrong."""

    BAD_MAC = "bad_mac"
    """The entry's MAC does not match its content: it was edited (or the key is wrong)."""
    MISSING = "missing"
    """Entries are missing before this one (``seq`` names the first missing one)."""
    REORDERED = "reordered"
    """The entry is authentic but not in its place (``detail`` says where it belongs)."""
    BROKEN_LINK = "broken_link"
    """The entry is authentic but does not follow the one before it."""
    TRUNCATED = "truncated"
    """Entries at the end are missing: the last one is older than the recorded head."""
    BAD_STATE = "bad_state"
    """The state row (base/head/key id) fails its MAC or names another key."""
    MALFORMED = "malformed"
    """The stored event cannot be parsed, or disagrees with its row."""
    NO_STATE = "no_state"
    """The state row (or its table) is missing: nothing vouches for the base and head."""
    OUTSIDE_CHAIN = "outside_chain"
    """An entry lies outside ``base < seq <= head``: forged past the head, or left behind
    the base."""
    BEHIND_ANCHOR = "behind_anchor"
    """The head is behind a head recorded outside the database (a checkpoint or
    ``--expect-head``), or the entry at a checkpoint's ``seq`` is another one."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify`` concluded. True when the chain is intact."""

    checked: int
    """Entries checked before stopping."""
    last_seq: int | None = None
    """``seq`` of the last intact entry, if any."""
    problem: Problem | None = None
    seq: int | None = None
    """Where the problem is."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return self.problem is None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        """One line for people: ``OK: 12 entries`` or the problem and its place."""
        if self.ok:
            return f"OK: {self.checked} entries verified"
        extra = f" ({self.detail})" if self.detail else ""
        where = "" if self.seq is None else f" at seq {self.seq}"
        return f"FAILED{where}: {self.problem}{extra}"


class _Verifier:
    """Checks entries one by one; ``feed`` returns the first problem, ``finish`` the result."""

    def __init__(self, key: bytes, start: ChainHead | None, end: ChainHead | None) -> None:
        self._key = key
        self._previous = start
        self._end = end
        self.checked = 0

    def _fail(self, problem: Problem, seq: int | None, detail: str = "") -> VerifyResult:
        last = self._previous.seq if self._previous is not None and self.checked else None
        return VerifyResult(self.checked, last, problem, seq, detail)

    def _belongs_at(self, entry: AuditEntry) -> int | None:
        low = max(1, entry.seq - REORDER_WINDOW)
        for seq in range(low, entry.seq + REORDER_WINDOW + 1):
            if seq != entry.seq and hmac.compare_digest(
                entry_mac(self._key, entry.prev_mac, entry.event, seq), entry.mac
            ):
                return seq
        return None

    def feed(self, entry: AuditEntry) -> VerifyResult | None:
        previous = self._previous
        if previous is not None and entry.seq <= previous.seq:
            return self._fail(Problem.REORDERED, entry.seq, f"comes after seq {previous.seq}")
        expected_mac = entry_mac(self._key, entry.prev_mac, entry.event, entry.seq)
        if not hmac.compare_digest(expected_mac, entry.mac):
            place = self._belongs_at(entry)
            if place is not None:
                return self._fail(Problem.REORDERED, entry.seq, f"belongs at seq {place}")
            return self._fail(Problem.BAD_MAC, entry.seq)
        if previous is None and entry.seq == 1:
            previous = GENESIS
        if previous is not None:
            if entry.seq > previous.seq + 1:
                missing = previous.seq + 1
                return self._fail(Problem.MISSING, missing, f"seq {missing}..{entry.seq - 1}")
            if not hmac.compare_digest(entry.prev_mac, previous.mac):
                return self._fail(Problem.BROKEN_LINK, entry.seq)
        self._previous = entry.head
        self.checked += 1
        return None

    def finish(self) -> VerifyResult:
        last = self._previous
        if self._end is not None and (last is None or last.seq < self._end.seq):
            first_missing = 1 if last is None else last.seq + 1
            return self._fail(
                Problem.TRUNCATED, first_missing, f"the recorded head is seq {self._end.seq}"
            )
        if (
            self._end is not None
            and last is not None
            and (last.seq != self._end.seq or not hmac.compare_digest(last.mac, self._end.mac))
        ):
            return self._fail(Problem.BROKEN_LINK, last.seq, "does not match the recorded head")
        return VerifyResult(self.checked, None if last is None or not self.checked else last.seq)


def verify(
    entries: Iterable[AuditEntry],
    key: bytes,
    *,
    start: ChainHead | None = None,
    end: ChainHead | None = None,
) -> VerifyResult:
    """Check ``entries`` (in the order given) against ``key``; stop at the first problem.

    ``start`` is the position before the first entry (a store's base); without it the first
    entry is trusted as an anchor unless it is entry 1, so a slice of an export can be
    checked on its own. ``end``, when given, is the head the last entry must be.
    """
    verifier = _Verifier(key, start, end)
    for entry in entries:
        problem = verifier.feed(entry)
        if problem is not None:
            return problem
    return verifier.finish()


async def averify(
    entries: AsyncIterable[AuditEntry],
    key: bytes,
    *,
    start: ChainHead | None = None,
    end: ChainHead | None = None,
) -> VerifyResult:
    """``verify`` for an async stream (``AuditStore.iter_entries``)."""
    verifier = _Verifier(key, start, end)
    try:
        async for entry in entries:
            problem = verifier.feed(entry)
            if problem is not None:
                return problem
    except CorruptEntry as exc:
        return verifier._fail(Problem.MALFORMED, exc.seq)
    return verifier.finish()


# -- keys ---------------------------------------------------------------------------------


def parse_key(text: str, *, name: str = "BURNLINK_AUDIT_KEY") -> bytes:
    """Decode a key given as hex or base64 (standard or URL-safe, padding optional).

    Raises ``ConfigError`` (naming ``name``, never the value) unless it decodes to at least
    ``KEY_BYTES`` bytes.
    """
    value = text.strip()
    decoded: bytes | None = None
    if value and all(c in "0123456789abcdefABCDEF" for c in value):
        # All hex digits: hex, never base64 (a base64 key is never all hex digits in practice).
        decoded = bytes.fromhex(value) if len(value) % 2 == 0 else None
    else:
        try:
            decoded = base64.b64decode(
                value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                validate=True,
            )
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is None or len(decoded) < KEY_BYTES:
        raise ConfigError(f"{name}: must be at least {KEY_BYTES} random bytes, in hex or base64")
    return decoded


def read_or_create_private_file(path: Path, make: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The content of ``path``; if missing, first write ``make()`` to it (mode 0600).

    Returns the content and whether it was created now. Creation is atomic: the data goes to
    a temporary file that is hard-linked into place, so two processes starting together end
    up with the same content. The parent directory is created with mode 0700. Raises
    ``ConfigError`` when the file cannot be read or written.
    """
    try:
        return path.read_bytes(), False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, make())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
            created = True
        except FileExistsError:
            created = False
        return path.read_bytes(), created
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror or type(exc).__name__}") from None
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The audit key kept in ``path``, made (32 random bytes, base64url, 0600) if missing.

    Returns the key and whether it was created now, so that the caller can warn that
    ``BURNLINK_AUDIT_KEY`` is unset and where the key is. Raises ``ConfigError`` when the file
    cannot be read or written or does not hold a valid key.
    """

    def make() -> bytes:
        return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=") + b"\n"

    content, created = read_or_create_private_file(path, make)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not an audit key file") from None
    return parse_key(text, name=str(path)), created
