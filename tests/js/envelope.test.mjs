// The browser's envelope module against the shared test vectors (docs/crypto.md § Test vectors).
// Run with `node --test tests/js/` (Node 20+); tests/js/test_node.py runs it from pytest.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  EnvelopeError,
  aad,
  b64Decode,
  b64urlDecode,
  b64urlEncode,
  decodePayload,
  deriveKeys,
  encodePayload,
  openEnvelope,
  parseEnvelope,
  safeFileName,
  seal,
} from "../../src/burnlink/web/static/js/envelope.js";

const VECTORS = JSON.parse(
  readFileSync(new URL("../vectors/envelope_v1.json", import.meta.url), "utf8"),
).vectors;

function payloadOf(vector) {
  const { type, name, mime, content_base64: content } = vector.payload;
  return { type, name, mime, content: b64Decode(content) };
}

async function keysOf(vector) {
  const salt = vector.salt === null ? null : b64urlDecode(vector.salt, 16);
  return deriveKeys(b64urlDecode(vector.link_key, 32), {
    passphrase: vector.passphrase,
    salt,
    iterations: vector.iterations ?? 0,
  });
}

test("there are five vectors", () => {
  assert.equal(VECTORS.length, 5);
});

for (const [index, vector] of VECTORS.entries()) {
  const name = `vector ${index + 1} (${vector.description})`;

  test(`${name}: derives the tokens and the encryption key`, async () => {
    const keys = await keysOf(vector);
    assert.equal(b64urlEncode(keys.accessToken), vector.access_token);
    assert.equal(b64urlEncode(keys.encryptionKey), vector.encryption_key);
    const proof = keys.passphraseProof === null ? null : b64urlEncode(keys.passphraseProof);
    assert.equal(proof, vector.passphrase_proof);
  });

  test(`${name}: builds the AAD from the envelope`, () => {
    assert.equal(new TextDecoder().decode(aad(vector.envelope)), vector.aad);
  });

  test(`${name}: frames the payload byte for byte`, () => {
    const framed = encodePayload(payloadOf(vector));
    assert.deepEqual(framed, b64Decode(vector.plaintext_base64));
    const decoded = decodePayload(framed);
    assert.equal(decoded.type, vector.payload.type);
    assert.deepEqual(decoded.content, payloadOf(vector).content);
    if (decoded.type === "file") {
      assert.equal(decoded.name, vector.payload.name);
      assert.equal(decoded.mime, vector.payload.mime);
    }
  });

  test(`${name}: opens the envelope`, async () => {
    const envelope = parseEnvelope(structuredClone(vector.envelope));
    const opened = await openEnvelope(envelope, await keysOf(vector));
    assert.equal(opened.type, vector.payload.type);
    assert.deepEqual(opened.content, payloadOf(vector).content);
    assert.equal(opened.name, vector.payload.name);
    assert.equal(opened.mime, vector.payload.mime);
  });

  test(`${name}: re-seals byte-identically with the fixed salt and nonce`, async () => {
    const { envelope, keys } = await seal(payloadOf(vector), b64urlDecode(vector.link_key, 32), {
      passphrase: vector.passphrase,
      iterations: vector.iterations ?? undefined,
      salt: vector.salt === null ? null : b64urlDecode(vector.salt, 16),
      nonce: b64urlDecode(vector.nonce, 12),
    });
    assert.equal(JSON.stringify(envelope), JSON.stringify(vector.envelope));
    assert.equal(b64urlEncode(keys.accessToken), vector.access_token);
  });
}

test("a wrong passphrase does not open the envelope", async () => {
  const vector = VECTORS[1];
  const keys = await deriveKeys(b64urlDecode(vector.link_key, 32), {
    passphrase: "wrong",
    salt: b64urlDecode(vector.salt, 16),
    iterations: vector.iterations,
  });
  await assert.rejects(openEnvelope(vector.envelope, keys), EnvelopeError);
});

test("a tampered header does not open the envelope", async () => {
  const vector = VECTORS[1];
  const keys = await keysOf(vector);
  const tampered = { ...vector.envelope, iter: vector.envelope.iter + 1 };
  await assert.rejects(openEnvelope(tampered, keys), EnvelopeError);
});

test("base64url decoding is canonical", () => {
  assert.deepEqual(b64urlDecode("AAEC"), new Uint8Array([0, 1, 2]));
  for (const bad of ["A", "AB=", "AB+/", "AB C", "AF"]) {
    assert.throws(() => b64urlDecode(bad), EnvelopeError, bad);
  }
  assert.throws(() => b64urlDecode("AAEC", 4), EnvelopeError);
});

test("envelopes that break v1 rules are refused", () => {
  const good = VECTORS[1].envelope;
  const cases = [
    { ...good, v: 2 },
    { ...good, v: true },
    { ...good, alg: "A128GCM" },
    { ...good, kdf: "argon2" },
    { ...good, extra: 1 },
    { ...good, iter: 599999 },
    { ...good, iter: 10000001 },
    { ...good, salt: "AAAA" },
    { ...good, nonce: "AAAA" },
    { ...good, ct: "AAAA" },
    { ...VECTORS[0].envelope, iter: 600000 },
    null,
    [],
  ];
  for (const envelope of cases) {
    assert.throws(() => parseEnvelope(envelope), EnvelopeError, JSON.stringify(envelope));
  }
});

test("malformed payloads are refused", () => {
  const encode = (text) => new TextEncoder().encode(text);
  for (const bad of [
    encode("no newline"),
    encode('{"type":"other"}\n'),
    encode("[1]\n"),
    encode('{"type":"file","name":1}\nx'),
    new Uint8Array([...encode('{"type":"text"}\n'), 0xff]),
  ]) {
    assert.throws(() => decodePayload(bad), EnvelopeError);
  }
});

test("a text payload keeps a BOM and unknown header members are ignored", () => {
  const bytes = new TextEncoder().encode('{"type":"text","x":1}\n\ufeffhi');
  assert.equal(decodePayload(bytes).text, "\ufeffhi");
});

test("file names keep only their last component and fit the header", () => {
  assert.equal(safeFileName("../../etc/passwd"), "passwd");
  assert.equal(safeFileName("C:\\Users\\me\\key.pem"), "key.pem");
  assert.equal(safeFileName(".."), null);
  assert.equal(safeFileName(""), null);
  assert.equal(safeFileName("a\u0000b.txt"), "ab.txt");
  const long = safeFileName("é".repeat(400) + ".env");
  assert.ok(long.endsWith(".env"));
  assert.ok([...long].length <= 255);
  const emoji = safeFileName("🔑".repeat(300) + ".txt");
  assert.ok(new TextEncoder().encode(emoji).length <= 640);
});

test("name and type lengths count code points, and the header line fits 1024 bytes", () => {
  const content = new Uint8Array([1]);
  // 200 astral characters are 200 code points but 400 UTF-16 units: accepted.
  const name = "🔑".repeat(200);
  assert.ok(encodePayload({ type: "file", content, name, mime: null }).length > 800);
  assert.throws(
    () => encodePayload({ type: "file", content, name: "🔑".repeat(256), mime: null }),
    EnvelopeError,
  );
  // Within the code-point limits but over the header's 1024 bytes (escaped controls): refused.
  const escaped = "\u0001".repeat(255);
  assert.throws(
    () => encodePayload({ type: "file", content, name: escaped, mime: null }),
    EnvelopeError,
  );
});
