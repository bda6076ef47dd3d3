"""Runs the JavaScript tests (``node --test tests/js/``) as part of the Python suite.

They check the browser's envelope and request sealing modules against the shared vectors, and
the pages' checks of typed access rules (``access.js``). One more test passes fresh sealed
answers between Python and Node, both ways. Without Node they skip with a message, except on CI
(``CI=true``), where a missing ``node`` fails the run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from burnlink.crypto import Payload
from burnlink.ids import b64url_encode
from burnlink.request_crypto import KeyPair, SealedAnswer, open_answer, seal_answer

HERE = Path(__file__).parent
MIN_NODE_MAJOR = 20
TIMEOUT = 120


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        message = f"node {MIN_NODE_MAJOR}+ is not installed: apt-get install nodejs"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return node


def test_envelope_module_passes_the_shared_vectors() -> None:
    node = _node()
    version = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert int(version.lstrip("v").split(".")[0]) >= MIN_NODE_MAJOR, version

    result = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--test", str(HERE)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=HERE.parent.parent,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout


# One Node run for the other side of a request: it opens what Python sealed, seals an answer
# to the Python requester's key, and makes a key pair of its own for Python to check.
_INTEROP = """
import { b64Decode, b64urlDecode, b64urlEncode } from "%(envelope)s";
import { fingerprint, generateKeyPair, openAnswer, sealAnswer } from "%(request_seal)s";
const input = JSON.parse(process.argv[1]);
const key = b64urlDecode(input.key);
const opened = await openAnswer(input.sealed, key, input.request_id);
const publicKey = key.subarray(32);
const sealed = await sealAnswer(
  { type: "file", content: b64Decode(input.content), name: "from-node.bin", mime: null },
  publicKey,
  input.request_id,
  { expectedFingerprint: b64urlDecode(input.fingerprint) },
);
const own = await generateKeyPair();
console.log(JSON.stringify({
  opened: new TextDecoder().decode(opened.content),
  sealed,
  own_key: b64urlEncode(own.privateKey),
  own_fingerprint: b64urlEncode(await fingerprint(own.publicKey)),
}));
"""


def test_request_answers_cross_between_python_and_node_with_fresh_keys() -> None:
    """Fresh keys, nonces and ephemeral keys: what one side seals the other opens."""
    node = _node()
    static = HERE.parent.parent / "src" / "burnlink" / "web" / "static" / "js"
    script = _INTEROP % {
        "envelope": (static / "envelope.js").as_uri(),
        "request_seal": (static / "request_seal.js").as_uri(),
    }
    requester = KeyPair.generate()
    request_id = "aW50ZXJvcC1yZXF1ZXN0IQ"
    content = os.urandom(300)
    sealed = seal_answer(
        Payload("Grüße 🔑".encode()),
        requester.public,
        request_id,
        expected_fingerprint=requester.fingerprint,
    )
    argument = {
        "key": requester.to_text(),
        "fingerprint": b64url_encode(requester.fingerprint),
        "request_id": request_id,
        "sealed": sealed.to_json(),
        "content": base64.b64encode(content).decode(),
    }

    result = subprocess.run(  # noqa: S603 - fixed argv
        [node, "--input-type=module", "-e", script, json.dumps(argument)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["opened"] == "Grüße 🔑"
    from_node = open_answer(SealedAnswer.from_json(answer["sealed"]), requester, request_id)
    assert from_node == Payload(content, is_file=True, name="from-node.bin")
    own = KeyPair.from_text(answer["own_key"])
    assert b64url_encode(own.fingerprint) == answer["own_fingerprint"]
