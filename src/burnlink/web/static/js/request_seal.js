// Sealing an answer to a requester's P-256 public key (docs/crypto.md § Sealing to a
// requester's public key): key pairs, fingerprints, sealing and opening with WebCrypto. Pure:
// no DOM and no network, so it runs in the browser and under Node 20
// (tests/js/request_seal.test.mjs checks it against tests/vectors/request_v1.json).
//
//   R = requester public key (uncompressed, 65 bytes)   F = SHA-256(R)
//   Z = ECDH(e, R) = ECDH(d, E)   key = HKDF-SHA256(Z, "", "burnlink v1 sealed answer" || R || E)
//   aad = "burnlink-sealed-answer/v1;alg=A256GCM;crv=P-256;rid={rid};rpk={R};epk={E}"

import {
  ALG,
  EnvelopeError,
  NONCE_BYTES,
  TAG_BYTES,
  VERSION,
  b64urlDecode,
  b64urlEncode,
  concat,
  decodePayload,
  encodePayload,
  randomBytes,
} from "./envelope.js";

export const CRV = "P-256";
export const PUBLIC_KEY_BYTES = 65;
export const SCALAR_BYTES = 32;
// A key pair as the requester's own link carries it: d (32 bytes) || R (65 bytes).
export const KEY_PAIR_BYTES = SCALAR_BYTES + PUBLIC_KEY_BYTES;
export const FINGERPRINT_BYTES = 32;

const INFO_LABEL = "burnlink v1 sealed answer";
const AAD_PREFIX = `burnlink-sealed-answer/v${VERSION};alg=${ALG};crv=${CRV}`;
const REQUEST_ID_RE = /^[A-Za-z0-9_-]{22}$/;
const FIELDS = ["alg", "crv", "ct", "epk", "nonce", "rpk", "v"];
const ECDH = { name: "ECDH", namedCurve: CRV };
// NIST P-256 (SEC 2 §2.4.2): field prime, b (a = -3), group order and base point G.
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const G = hexBytes(
  "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" +
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
);

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

function hexBytes(hex) {
  return new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
}

/** An `EnvelopeError` that names the field at fault (`answer.epk`, `request.public_key`, …). */
function fail(field, reason) {
  const error = new EnvelopeError(`${field}: ${reason}`);
  error.field = field;
  return error;
}

function decode(text, field, length) {
  try {
    return b64urlDecode(text, length);
  } catch (error) {
    if (error instanceof EnvelopeError) throw fail(field, error.message);
    throw error;
  }
}

function bigInt(bytes) {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** Equality of two byte arrays in time that depends only on their length. */
export function constantTimeEqual(left, right) {
  if (left.length !== right.length) return false;
  let diff = 0;
  for (let i = 0; i < left.length; i += 1) diff |= left[i] ^ right[i];
  return diff === 0;
}

/**
 * Throw `EnvelopeError` (with `field`) unless `point` is an uncompressed P-256 point with
 * reduced coordinates on the curve: never the identity, a compressed or a hybrid form.
 */
export function validatePublicKey(point, field) {
  if (!(point instanceof Uint8Array) || point.length !== PUBLIC_KEY_BYTES || point[0] !== 0x04) {
    throw fail(field, `must be an uncompressed P-256 point of ${PUBLIC_KEY_BYTES} bytes`);
  }
  const x = bigInt(point.subarray(1, 33));
  const y = bigInt(point.subarray(33));
  if (x >= P || y >= P || (y * y - (x * x * x - 3n * x + B)) % P !== 0n) {
    throw fail(field, "is not a point on P-256");
  }
}

/** Decode and validate a public key in its text form (base64url of 65 bytes). */
export function parsePublicKey(text, field) {
  const point = decode(text, field, PUBLIC_KEY_BYTES);
  validatePublicKey(point, field);
  return point;
}

/** SHA-256 of the 65-byte public key: what the request link's fragment carries. */
export async function fingerprint(publicKey) {
  return new Uint8Array(await subtle.digest("SHA-256", publicKey));
}

/**
 * Throw unless `publicKey` hashes to `expected` (compared in constant time): a key the
 * server handed out that is not the requester's is refused here, before anything is sealed.
 */
export async function checkFingerprint(publicKey, expected) {
  const actual = await fingerprint(publicKey);
  if (expected.length !== FINGERPRINT_BYTES || !constantTimeEqual(actual, expected)) {
    throw fail(
      "request.public_key",
      "does not match the fingerprint in the request link; nothing was sealed",
    );
  }
}

/** Throw unless `requestId` has the shape of a public id (22 base64url characters). */
export function checkRequestId(requestId) {
  if (typeof requestId !== "string" || !REQUEST_ID_RE.test(requestId)) {
    throw fail("request.id", "must be 22 base64url characters");
  }
}

async function importPublic(point) {
  return subtle.importKey("raw", point, ECDH, true, []);
}

async function deriveShared(privateKey, point) {
  const params = { name: "ECDH", public: await importPublic(point) };
  return new Uint8Array(await subtle.deriveBits(params, privateKey, 256));
}

/**
 * A fresh key pair for a request: `{privateKey, publicKey}` as bytes. `privateKey` is
 * d || R (97 bytes), what the requester's own link carries; `publicKey` is R (65 bytes).
 */
export async function generateKeyPair() {
  const pair = await subtle.generateKey(ECDH, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", pair.privateKey);
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { privateKey: concat(b64urlDecode(jwk.d, SCALAR_BYTES), publicKey), publicKey };
}

/**
 * Validate d || R and import it: `{privateKey, publicKey, key}` with `key` a non-extractable
 * ECDH CryptoKey. Throws unless d is in range and R is d·G (WebCrypto cannot compute d·G, so
 * ECDH(d, G) must be R's X coordinate: R = ±d·G, which give the same shared secrets).
 */
export async function importKeyPair(bytes, field = "request.private_key") {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_PAIR_BYTES) {
    throw fail(field, `must be ${KEY_PAIR_BYTES} bytes`);
  }
  const scalar = bytes.slice(0, SCALAR_BYTES);
  const publicKey = bytes.slice(SCALAR_BYTES);
  const value = bigInt(scalar);
  if (value < 1n || value >= N) throw fail(field, "holds a private scalar out of range");
  validatePublicKey(publicKey, field);
  const mismatch = () => fail(field, "holds a public key that is not its private key's");
  const jwk = {
    kty: "EC",
    crv: CRV,
    d: b64urlEncode(scalar),
    x: b64urlEncode(publicKey.subarray(1, 33)),
    y: b64urlEncode(publicKey.subarray(33)),
  };
  let key;
  try {
    key = await subtle.importKey("jwk", jwk, ECDH, false, ["deriveBits"]);
  } catch {
    throw mismatch();
  }
  if (!constantTimeEqual(await deriveShared(key, G), publicKey.subarray(1, 33))) throw mismatch();
  return { privateKey: bytes.slice(), publicKey, key };
}

/** Parse a key pair's base64url text (130 characters) and import it. */
export async function importKeyPairText(text, field = "request.private_key") {
  return importKeyPair(decode(text, field, KEY_PAIR_BYTES), field);
}

/** ECDH of an imported key pair with a validated public key: Z, 32 bytes. */
export async function sharedSecret(keyPair, peerPublic) {
  return deriveShared(keyPair.key, peerPublic);
}

/** HKDF-SHA256(Z, salt "", info "burnlink v1 sealed answer" || R || E, 32 bytes). */
export async function answerKey(shared, requesterPublic, ephemeralPublic) {
  const key = await subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const params = {
    name: "HKDF",
    hash: "SHA-256",
    salt: new Uint8Array(0),
    info: concat(utf8.encode(INFO_LABEL), requesterPublic, ephemeralPublic),
  };
  return new Uint8Array(await subtle.deriveBits(params, key, 256));
}

/** The AAD that binds the request id and both public keys (ASCII, 258 bytes). */
export function answerAad(requestId, requesterPublic, ephemeralPublic) {
  checkRequestId(requestId);
  const rpk = b64urlEncode(requesterPublic);
  const epk = b64urlEncode(ephemeralPublic);
  return utf8.encode(`${AAD_PREFIX};rid=${requestId};rpk=${rpk};epk=${epk}`);
}

/**
 * Validate a decoded sealed answer object (docs/crypto.md § The sealed answer object) and
 * return its parts as bytes: `{requesterPublic, ephemeralPublic, nonce, ciphertext}`.
 */
export function parseSealedAnswer(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw fail("answer", "must be a JSON object");
  }
  if (obj.v !== VERSION) throw fail("answer.v", `unsupported version; this speaks v${VERSION}`);
  if (Object.keys(obj).sort().join() !== FIELDS.join()) {
    throw fail("answer", `fields must be exactly ${FIELDS.join(", ")}`);
  }
  if (obj.alg !== ALG) throw fail("answer.alg", `alg must be ${ALG}`);
  if (obj.crv !== CRV) throw fail("answer.crv", `crv must be ${CRV}`);
  const ciphertext = decode(obj.ct, "answer.ct");
  if (ciphertext.length < TAG_BYTES) {
    throw fail("answer.ct", "is shorter than the authentication tag");
  }
  return {
    requesterPublic: parsePublicKey(obj.rpk, "answer.rpk"),
    ephemeralPublic: parsePublicKey(obj.epk, "answer.epk"),
    nonce: decode(obj.nonce, "answer.nonce", NONCE_BYTES),
    ciphertext,
  };
}

/**
 * Seal `payload` (`{type, content, name?, mime?}` as envelope.js frames it) to the
 * requester's public key for `requestId`. `expectedFingerprint` is the one from the request
 * link: a key that does not hash to it is refused. `ephemeral` (d || E bytes) and `nonce` are
 * fixed only by tests. Returns the sealed answer object, ready for JSON.
 */
export async function sealAnswer(
  payload,
  requesterPublic,
  requestId,
  { expectedFingerprint, ephemeral = null, nonce = null },
) {
  validatePublicKey(requesterPublic, "request.public_key");
  await checkFingerprint(requesterPublic, expectedFingerprint);
  checkRequestId(requestId);
  const framed = encodePayload(payload);
  let privateKey;
  let ephemeralPublic;
  if (ephemeral === null) {
    const pair = await subtle.generateKey(ECDH, false, ["deriveBits"]);
    privateKey = pair.privateKey;
    ephemeralPublic = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  } else {
    const pair = await importKeyPair(ephemeral, "ephemeral");
    privateKey = pair.key;
    ephemeralPublic = pair.publicKey;
  }
  const nonceBytes = nonce ?? randomBytes(NONCE_BYTES);
  if (nonceBytes.length !== NONCE_BYTES) throw fail("nonce", `must be ${NONCE_BYTES} bytes`);
  const shared = await deriveShared(privateKey, requesterPublic);
  const keyBytes = await answerKey(shared, requesterPublic, ephemeralPublic);
  const key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt"]);
  const params = {
    name: "AES-GCM",
    iv: nonceBytes,
    additionalData: answerAad(requestId, requesterPublic, ephemeralPublic),
    tagLength: 128,
  };
  const ct = new Uint8Array(await subtle.encrypt(params, key, framed));
  return {
    v: VERSION,
    alg: ALG,
    crv: CRV,
    rpk: b64urlEncode(requesterPublic),
    epk: b64urlEncode(ephemeralPublic),
    nonce: b64urlEncode(nonceBytes),
    ct: b64urlEncode(ct),
  };
}

/**
 * Open a sealed answer object with the requester's key pair (d || R bytes) and the request id
 * of its own link. Throws `EnvelopeError`: field `answer.rpk` for an answer sealed to another
 * key, `answer` for one that does not decrypt (tampered, or of another request).
 */
export async function openAnswer(sealed, keyPairBytes, requestId) {
  const answer = parseSealedAnswer(sealed);
  const pair = await importKeyPair(keyPairBytes);
  if (!constantTimeEqual(answer.requesterPublic, pair.publicKey)) {
    throw fail("answer.rpk", "is not this request's public key; the answer was sealed to another");
  }
  const additionalData = answerAad(requestId, answer.requesterPublic, answer.ephemeralPublic);
  const shared = await deriveShared(pair.key, answer.ephemeralPublic);
  const keyBytes = await answerKey(shared, answer.requesterPublic, answer.ephemeralPublic);
  const key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, ["decrypt"]);
  const params = { name: "AES-GCM", iv: answer.nonce, additionalData, tagLength: 128 };
  let plain;
  try {
    plain = new Uint8Array(await subtle.decrypt(params, key, answer.ciphertext));
  } catch {
    throw fail("answer", "does not decrypt with this key and request id");
  }
  return decodePayload(plain);
}
