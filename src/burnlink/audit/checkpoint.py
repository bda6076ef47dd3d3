"""Signed checkpoints of the audit chain's head: an anchor for the log outside its database.

The hash chain shows any change to the entries between the base and the head, but someone
with write access to the database can delete the tail together with the state row (or the
whole log) and the database alone cannot tell. A checkpoint records the head somewhere else,
signed with the proof-of-burn key (``burnlink.signing``), so ``burnlink audit verify
--checkpoint FILE`` can hold the database against it later.

Format (docs/audit.md)::

    {"alg": "EdDSA", "kid": "<signing key thumbprint>", "signature": "<base64url>",
     "statement": {"type": "burnlink.audit.checkpoint.v1", "head_seq": 1234,
                   "head_mac": "<64 hex>", "at": "2030-01-01T00:00:00.000Z",
                   "log": "<audit key id, 16 hex>"}}

The signature is Ed25519 over the canonical JSON of ``statement``, as for burn statements;
the distinct ``type`` keeps one kind of statement from passing for the other. ``log`` is the
audit key's public id (``ids.key_id``), so a checkpoint of one log is not held against
another.

``CheckpointWriter`` signs the head on a beat (``BURNLINK_AUDIT_CHECKPOINT_INTERVAL``) and
writes it to a file (replaced atomically), the JSON Lines sink and a webhook, as configured.
It signs only a state row that is authentic under the audit key: it never vouches for a log
that already fails.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from burnlink.audit.backend import AuditStore
from burnlink.audit.chain import MAC_BYTES, Anchor
from burnlink.audit.events import canonical_json, format_time, parse_time
from burnlink.errors import CheckpointInvalid, InvalidInput, StorageError
from burnlink.ids import b64url_encode, key_id
from burnlink.jwk import decode_unpadded, pick_key

__all__ = [
    "CHECKPOINT_TYPE",
    "CHECKPOINT_WEBHOOK_TYPE",
    "MAX_CHECKPOINT_BYTES",
    "Checkpoint",
    "CheckpointMessage",
    "CheckpointWriter",
    "sign_checkpoint",
    "verify_checkpoint",
]

CHECKPOINT_TYPE: Final = "burnlink.audit.checkpoint.v1"
MAX_CHECKPOINT_BYTES: Final = 4096
"""A checkpoint is about 400 bytes; anything much larger is not one (read no further)."""

LOG = logging.getLogger(__name__)

_FIELDS: Final = frozenset({"type", "head_seq", "head_mac", "at", "log"})
_HEX_MAC: Final = re.compile(rf"[0-9a-f]{{{2 * MAC_BYTES}}}")
_LOG_ID: Final = re.compile(r"[0-9a-f]{16}")
_MAX_SEQ: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint says: the head of the log ``log`` at time ``at``."""

    head_seq: int
    head_mac: bytes
    at: datetime
    log: str
    """The audit key's id (``ids.key_id``): which log this is."""

    def to_dict(self) -> dict[str, Any]:
        """The ``statement`` member of the signed document."""
        return {
            "type": CHECKPOINT_TYPE,
            "head_seq": self.head_seq,
            "head_mac": self.head_mac.hex(),
            "at": format_time(self.at),
            "log": self.log,
        }

    def canonical(self) -> bytes:
        """The bytes the signature covers."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        """Parse a ``statement`` member strictly; ``CheckpointInvalid`` if malformed."""
        if not isinstance(data, Mapping) or set(data) != _FIELDS:
            raise CheckpointInvalid("The checkpoint's statement has the wrong fields.")
        seq, mac, at, log = data["head_seq"], data["head_mac"], data["at"], data["log"]
        if data["type"] != CHECKPOINT_TYPE:
            raise CheckpointInvalid("The statement is not an audit checkpoint.")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= _MAX_SEQ:
            raise CheckpointInvalid("The checkpoint's head_seq is not a sequence number.")
        if not isinstance(mac, str) or not _HEX_MAC.fullmatch(mac):
            raise CheckpointInvalid("The checkpoint's head_mac is not 64 hex digits.")
        if not isinstance(log, str) or not _LOG_ID.fullmatch(log):
            raise CheckpointInvalid("The checkpoint's log is not an audit key id.")
        try:
            moment = parse_time(at) if isinstance(at, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise CheckpointInvalid("The checkpoint's time is malformed.")
        return cls(head_seq=seq, head_mac=bytes.fromhex(mac), at=moment, log=log)

    def anchor(self) -> Anchor:
        """This checkpoint as an anchor for ``audit.verify.verify_store``."""
        return Anchor(self.head_seq, self.head_mac, "the checkpoint")


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The signed JSON document (canonical, one line, no newline)."""

    document = {
        "alg": "EdDSA",
        "kid": key_id(key.public_key()),
        "signature": b64url_encode(key.sign(checkpoint.canonical())),
        "statement": checkpoint.to_dict(),
    }
    return canonical_json(document).decode("utf-8")


def verify_checkpoint(
    document: str | bytes, keys: Ed25519PublicKey | Mapping[str, Any]
) -> Checkpoint:
    """Check a signed checkpoint against ``keys`` (a key, a JWK or a JWK set, picked by
    ``kid``) and return what it says; ``CheckpointInvalid`` when it does not verify."""
    if len(document) > MAX_CHECKPOINT_BYTES:
        raise CheckpointInvalid("The checkpoint is too large to be one.")
    try:
        data = json.loads(document)
    except ValueError:
        raise CheckpointInvalid("The checkpoint is not JSON.") from None
    if not isinstance(data, dict) or set(data) != {"alg", "kid", "signature", "statement"}:
        raise CheckpointInvalid("The file does not hold a signed audit checkpoint.")
    if data["alg"] != "EdDSA" or not isinstance(data["signature"], str):
        raise CheckpointInvalid("The checkpoint uses an unsupported algorithm.")
    checkpoint = Checkpoint.from_dict(data["statement"])
    kid = data["kid"]
    try:
        key = pick_key(keys, kid if isinstance(kid, str) else "")
    except InvalidInput as exc:
        raise CheckpointInvalid(f"The checkpoint {exc.reason}.") from None
    if key_id(key) != kid:
        raise CheckpointInvalid("The checkpoint is signed by another key.")
    try:
        key.verify(decode_unpadded(data["signature"]), checkpoint.canonical())
    except (InvalidSignature, ValueError, binascii.Error):
        raise CheckpointInvalid("The checkpoint's signature does not verify.") from None
    return checkpoint


def write_file_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0644: a checkpoint holds nothing secret) so that
    a reader sees the old checkpoint or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


CHECKPOINT_WEBHOOK_TYPE: Final = "audit.checkpoint"


@dataclass(frozen=True, slots=True)
class CheckpointMessage:
    """A checkpoint as a webhook (``webhooks.Deliverable``), in the Standard Webhooks shape of
    every burnlink webhook: ``{"type": "audit.checkpoint", "timestamp": …, "data":
    {"checkpoint": <the signed document>}}``."""

    id: str
    document: str
    at: datetime

    @classmethod
    def of(cls, document: str, at: datetime) -> CheckpointMessage:
        """The message carrying ``document``, signed at ``at``, with a new id."""
        return cls("msg_" + secrets.token_urlsafe(16), document, at)

    def body(self) -> bytes:
        """The exact bytes sent and signed."""
        return canonical_json(
            {
                "type": CHECKPOINT_WEBHOOK_TYPE,
                "timestamp": format_time(self.at),
                "data": {"checkpoint": json.loads(self.document)},
            }
        )


Publish = Callable[[str], object]
"""Somewhere a signed checkpoint goes (the sink, a webhook queue): called on the event loop,
must neither block nor raise; what it returns is ignored."""


class CheckpointWriter:
    """Signs the head of ``store`` and writes it to ``file`` and each of ``publish``."""

    def __init__(
        self,
        store: AuditStore,
        *,
        signing_key: Ed25519PrivateKey,
        now: Callable[[], datetime],
        file: Path | None = None,
        publish: tuple[Publish, ...] = (),
    ) -> None:
        """Nothing is read or written until ``write_once`` or ``run``."""
        self._store = store
        self._signing_key = signing_key
        self._now = now
        self._file = file
        self._publish = publish
        self.failures = 0

    async def write_once(self) -> str | None:
        """Sign the current head and write it everywhere; the document, or ``None`` when the
        store failed or its state row is not authentic (logged, counted in ``failures``)."""
        try:
            state = await self._store.chain_state()
        except StorageError as exc:
            self.failures += 1
            LOG.warning("audit checkpoint skipped: %s", type(exc).__name__)
            return None
        if not self._store.is_authentic(state):
            self.failures += 1
            LOG.error("audit checkpoint refused: the state row does not verify")
            return None
        checkpoint = Checkpoint(
            head_seq=state.head.seq,
            head_mac=state.head.mac,
            at=self._now(),
            log=state.key_id,  # authentic, so it is the log's key's id
        )
        document = sign_checkpoint(checkpoint, self._signing_key)
        if self._file is not None:
            try:
                await asyncio.to_thread(write_file_atomically, self._file, document + "\n")
            except OSError as exc:
                self.failures += 1
                LOG.warning("audit checkpoint file not written: %s", exc.strerror or exc)
        for publish in self._publish:
            publish(document)
        return document

    async def run(self, interval: float) -> None:
        """``write_once`` now and every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.write_once()
            except Exception as exc:  # noqa: BLE001 - a missed checkpoint must not stop the server
                self.failures += 1
                LOG.error("audit checkpoint failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)
