// The browser's request sealing module against the shared vectors (docs/crypto.md § Request
// vectors). Run with `node --test tests/js/` (Node 20+); tests/js/test_node.py runs it from pytest.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  EnvelopeError,
  b64Decode,
  b64urlDecode,
  b64urlEncode,
} from "../../src/burnlink/web/static/js/envelope.js";
import {
  answerAad,
  answerKey,
  checkFingerprint,
  constantTimeEqual,
  fingerprint,
  generateKeyPair,
  importKeyPair,
  importKeyPairText,
  openAnswer,
  parsePublicKey,
  parseSealedAnswer,
  sealAnswer,
  sharedSecret,
} from "../../src/burnlink/web/static/js/request_seal.js";

const DOCUMENT = JSON.parse(
  readFileSync(new URL("../vectors/request_v1.json", import.meta.url), "utf8"),
);
const VECTORS = DOCUMENT.vectors;
const INVALID = DOCUMENT.invalid;
const REQUEST_ID = "cmVxdWVzdC1pZC10ZXN0cw";

function payloadOf(vector) {
  const { type, name, mime, content_base64: content } = vector.payload;
  return { type, name, mime, content: b64Decode(content) };
}

function samePayload(opened, vector) {
  assert.equal(opened.type, vector.payload.type);
  assert.deepEqual(opened.content, b64Decode(vector.payload.content_base64));
  assert.equal(opened.name, vector.payload.name);
  assert.equal(opened.mime, vector.payload.mime);
}

async function rejectsOn(promise, field) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof EnvelopeError, String(error));
    assert.equal(error.field, field, error.message);
    return true;
  });
}

test("there are four vectors and invalid cases for every stage", () => {
  assert.equal(VECTORS.length, 4);
  assert.deepEqual(
    new Set(INVALID.map((item) => item.stage)),
    new Set(["key", "seal", "parse", "open"]),
  );
});

for (const [index, vector] of VECTORS.entries()) {
  const name = `vector ${index + 1} (${vector.description})`;

  test(`${name}: imports both key pairs and computes the fingerprint`, async () => {
    const requester = await importKeyPairText(vector.requester_key);
    assert.equal(b64urlEncode(requester.publicKey), vector.requester_public);
    assert.equal(b64urlEncode(await fingerprint(requester.publicKey)), vector.fingerprint);
    const ephemeral = await importKeyPairText(vector.ephemeral_key, "ephemeral");
    assert.equal(b64urlEncode(ephemeral.publicKey), vector.ephemeral_public);
  });

  test(`${name}: derives Z on both sides, the answer key and the AAD`, async () => {
    const requester = await importKeyPairText(vector.requester_key);
    const ephemeral = await importKeyPairText(vector.ephemeral_key, "ephemeral");
    const shared = await sharedSecret(ephemeral, requester.publicKey);
    assert.equal(b64urlEncode(shared), vector.shared_secret);
    assert.deepEqual(await sharedSecret(requester, ephemeral.publicKey), shared);
    const key = await answerKey(shared, requester.publicKey, ephemeral.publicKey);
    assert.equal(b64urlEncode(key), vector.answer_key);
    const aad = answerAad(vector.request_id, requester.publicKey, ephemeral.publicKey);
    assert.equal(new TextDecoder().decode(aad), vector.aad);
  });

  test(`${name}: opens the sealed answer`, async () => {
    const opened = await openAnswer(
      structuredClone(vector.sealed),
      b64urlDecode(vector.requester_key),
      vector.request_id,
    );
    samePayload(opened, vector);
  });

  test(`${name}: re-seals byte-identically with the fixed ephemeral key and nonce`, async () => {
    const sealed = await sealAnswer(
      payloadOf(vector),
      b64urlDecode(vector.requester_public),
      vector.request_id,
      {
        expectedFingerprint: b64urlDecode(vector.fingerprint),
        ephemeral: b64urlDecode(vector.ephemeral_key),
        nonce: b64urlDecode(vector.nonce),
      },
    );
    assert.equal(JSON.stringify(sealed), JSON.stringify(vector.sealed));
  });
}

for (const item of INVALID) {
  test(`invalid (${item.stage}): ${item.description} fails on ${item.field}`, async () => {
    if (item.stage === "key") {
      await rejectsOn(importKeyPairText(item.requester_key), item.field);
    } else if (item.stage === "seal") {
      const attempt = sealAnswer(
        payloadOf(VECTORS[0]),
        b64urlDecode(item.requester_public),
        item.request_id,
        { expectedFingerprint: b64urlDecode(item.fingerprint) },
      );
      await rejectsOn(attempt, item.field);
    } else if (item.stage === "parse") {
      await rejectsOn(
        Promise.resolve().then(() => parseSealedAnswer(item.sealed)),
        item.field,
      );
    } else {
      parseSealedAnswer(item.sealed);
      const attempt = openAnswer(item.sealed, b64urlDecode(item.requester_key), item.request_id);
      await rejectsOn(attempt, item.field);
    }
  });
}

for (const part of ["requestId", "requesterPublic", "ephemeralPublic"]) {
  test(`the AAD binds ${part}: swapped, the right key does not decrypt`, async () => {
    const vector = VECTORS[0];
    const answer = parseSealedAnswer(vector.sealed);
    const parts = {
      requestId: vector.request_id,
      requesterPublic: answer.requesterPublic,
      ephemeralPublic: answer.ephemeralPublic,
    };
    const other = {
      requestId: REQUEST_ID,
      requesterPublic: b64urlDecode(VECTORS[3].requester_public),
      ephemeralPublic: b64urlDecode(VECTORS[1].ephemeral_public),
    };
    const key = await crypto.subtle.importKey(
      "raw",
      b64urlDecode(vector.answer_key),
      "AES-GCM",
      false,
      ["decrypt"],
    );
    const decrypt = (values) =>
      crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: answer.nonce,
          additionalData: answerAad(
            values.requestId,
            values.requesterPublic,
            values.ephemeralPublic,
          ),
        },
        key,
        answer.ciphertext,
      );
    await decrypt(parts);
    await assert.rejects(decrypt({ ...parts, [part]: other[part] }));
  });
}

test("a fresh key pair seals and opens text and files", async () => {
  const requester = await generateKeyPair();
  assert.equal(requester.privateKey.length, 97);
  const expectedFingerprint = await fingerprint(requester.publicKey);
  for (const payload of [
    { type: "text", content: new TextEncoder().encode("pässwörd ✓"), name: null, mime: null },
    { type: "file", content: new Uint8Array(1000).fill(7), name: "k.pem", mime: null },
  ]) {
    const sealed = await sealAnswer(payload, requester.publicKey, REQUEST_ID, {
      expectedFingerprint,
    });
    const opened = await openAnswer(
      JSON.parse(JSON.stringify(sealed)),
      requester.privateKey,
      REQUEST_ID,
    );
    assert.equal(opened.type, payload.type);
    assert.deepEqual(opened.content, payload.content);
    assert.equal(opened.name, payload.name);
  }
});

test("every answer has a fresh ephemeral key and nonce", async () => {
  const requester = await generateKeyPair();
  const expectedFingerprint = await fingerprint(requester.publicKey);
  const payload = { type: "text", content: new Uint8Array([1]) };
  const first = await sealAnswer(payload, requester.publicKey, REQUEST_ID, { expectedFingerprint });
  const second = await sealAnswer(payload, requester.publicKey, REQUEST_ID, {
    expectedFingerprint,
  });
  assert.notEqual(first.epk, second.epk);
  assert.notEqual(first.nonce, second.nonce);
});

test("a key that does not match the link's fingerprint is refused before sealing", async () => {
  const requester = await generateKeyPair();
  const server = await generateKeyPair();
  const expectedFingerprint = await fingerprint(requester.publicKey);
  const payload = { type: "text", content: new Uint8Array([1]) };
  await rejectsOn(
    sealAnswer(payload, server.publicKey, REQUEST_ID, { expectedFingerprint }),
    "request.public_key",
  );
  await rejectsOn(
    checkFingerprint(requester.publicKey, expectedFingerprint.subarray(0, 31)),
    "request.public_key",
  );
});

test("an answer sealed to another key is refused by the requester", async () => {
  const requester = await generateKeyPair();
  const other = await generateKeyPair();
  const sealed = await sealAnswer(
    { type: "text", content: new Uint8Array([1]) },
    other.publicKey,
    REQUEST_ID,
    {
      expectedFingerprint: await fingerprint(other.publicKey),
    },
  );
  await rejectsOn(openAnswer(sealed, requester.privateKey, REQUEST_ID), "answer.rpk");
});

test("request ids of another shape are refused", () => {
  const point = b64urlDecode(VECTORS[0].requester_public);
  for (const bad of ["short", "cmVxdWVzdC1pZC10ZXN0c+", "cmVxdWVzdC1pZC10ZXN0cwA", 7]) {
    assert.throws(() => answerAad(bad, point, point), EnvelopeError);
  }
});

test("public keys and key pairs of another shape are refused", async () => {
  assert.throws(() => parsePublicKey(VECTORS[0].requester_public.slice(0, -1), "x"), EnvelopeError);
  assert.throws(() => parseSealedAnswer(null), EnvelopeError);
  assert.throws(() => parseSealedAnswer([]), EnvelopeError);
  await rejectsOn(importKeyPair(new Uint8Array(96)), "request.private_key");
  const pair = await importKeyPairText(VECTORS[0].requester_key);
  assert.ok(constantTimeEqual(pair.publicKey, b64urlDecode(VECTORS[0].requester_public)));
  assert.ok(!constantTimeEqual(pair.publicKey, pair.publicKey.subarray(1)));
});

test("a private scalar out of range is refused before WebCrypto sees it", async () => {
  const publicKey = b64urlDecode(VECTORS[0].requester_public);
  const order = new Uint8Array(
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"
      .match(/../g)
      .map((pair) => parseInt(pair, 16)),
  );
  for (const scalar of [new Uint8Array(32), order]) {
    const bytes = new Uint8Array(97);
    bytes.set(scalar);
    bytes.set(publicKey, 32);
    await assert.rejects(importKeyPair(bytes), /out of range/);
  }
});
