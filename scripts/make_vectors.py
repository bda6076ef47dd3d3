"""Write tests/vectors/envelope_v1.json: fixed inputs of envelope v1 and what they must give.

Run once when the format changes (never for v1 again); the file is the shared fixture that
the Python tests and the browser client both check.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from pathlib import Path

from burnlink.crypto import Payload, encode_payload, seal
from burnlink.ids import b64url_encode

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "envelope_v1.json"


def _key(byte: int) -> bytes:
    return bytes((byte + i) % 256 for i in range(32))


CASES = [
    ("text without passphrase", _key(0x00), None, Payload(b"hello, world\n")),
    (
        "text with a non-ASCII passphrase (given decomposed; NFC is applied)",
        _key(0x40),
        unicodedata.normalize("NFD", "pässwörd ✓"),
        Payload("Grüße, 東京 🔑".encode()),
    ),
    (
        "file with name and media type, binary content, passphrase",
        _key(0x80),
        "correct horse battery staple",
        Payload(
            bytes(range(256)), is_file=True, name="id_ed25519", mime="application/octet-stream"
        ),
    ),
    (
        "file without name or type, no passphrase",
        _key(0xC0),
        None,
        Payload(b"\x00\xff", is_file=True),
    ),
    (
        "file with a non-ASCII name, no passphrase",
        _key(0xE0),
        None,
        Payload(b"API_KEY=abc\n", is_file=True, name="clé ✓.env", mime="text/plain"),
    ),
]


def main() -> None:
    vectors = []
    for number, (description, key, passphrase, payload) in enumerate(CASES):
        salt = bytes(range(16 * number, 16 * number + 16))
        nonce = bytes(range(100 + number, 112 + number))
        sealed = seal(payload, key, passphrase=passphrase, salt=salt, nonce=nonce)
        keys = sealed.keys
        vectors.append(
            {
                "description": description,
                "link_key": b64url_encode(key),
                "passphrase": passphrase,
                "salt": b64url_encode(salt) if passphrase is not None else None,
                "iterations": sealed.envelope.iterations or None,
                "nonce": b64url_encode(nonce),
                "payload": {
                    "type": "file" if payload.is_file else "text",
                    "name": payload.name,
                    "mime": payload.mime,
                    "content_base64": base64.b64encode(payload.content).decode(),
                },
                "plaintext_base64": base64.b64encode(encode_payload(payload)).decode(),
                "access_token": b64url_encode(keys.access_token),
                "passphrase_proof": b64url_encode(keys.passphrase_proof)
                if keys.passphrase_proof
                else None,
                "encryption_key": b64url_encode(keys.encryption_key),
                "aad": sealed.envelope.aad().decode(),
                "envelope": sealed.envelope.to_json(),
            }
        )
    document = {
        "format": "burnlink envelope v1",
        "spec": "docs/crypto.md",
        "vectors": vectors,
    }
    OUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
