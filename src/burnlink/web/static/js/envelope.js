// Envelope v1 (docs/crypto.md): key derivation, payload framing, sealing and opening with
// WebCrypto. Pure: no DOM and no network, so the same module runs in the browser and under
// Node 20 (tests/js/envelope.test.mjs checks it against tests/vectors/envelope_v1.json).

export const VERSION = 1;
export const ALG = "A256GCM";
export const KDF_NONE = "none";
export const KDF_PBKDF2 = "pbkdf2-sha256";
export const MIN_ITERATIONS = 600000;
export const MAX_ITERATIONS = 10000000;
export const KEY_BYTES = 32;
export const SALT_BYTES = 16;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
// Name and type lengths count Unicode code points ([...text].length), as Python's len does.
export const MAX_NAME_CHARS = 255;
export const MAX_MIME_CHARS = 255;
// The payload header line, its 0x0A included; the server allows this on top of max_bytes.
export const MAX_HEADER_BYTES = 1024;
export const MAX_PASSPHRASE_CHARS = 1024;

const INFO_ACCESS = "burnlink v1 access";
const INFO_PASSPHRASE = "burnlink v1 passphrase";
const INFO_ENCRYPT = "burnlink v1 encrypt";
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const CHUNK = 0x8000;

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

/** Raised when an envelope, a payload or an encoding breaks the v1 rules. */
export class EnvelopeError extends Error {
  constructor(message) {
    super(message);
    this.name = "EnvelopeError";
  }
}

/** Unpadded base64url of `bytes` (RFC 4648 §5). */
export function b64urlEncode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decode canonical unpadded base64url, optionally of an exact byte `length`. */
export function b64urlDecode(text, length) {
  if (typeof text !== "string" || !B64URL_RE.test(text) || text.length % 4 === 1) {
    throw new EnvelopeError("not canonical unpadded base64url");
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  if (b64urlEncode(bytes) !== text) throw new EnvelopeError("not canonical unpadded base64url");
  if (length !== undefined && bytes.length !== length) {
    throw new EnvelopeError(`must be ${length} bytes`);
  }
  return bytes;
}

/** Standard padded base64 (only the curl-mode API and the test vectors use it). */
export function b64Decode(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** `count` bytes from the platform's CSPRNG. */
export function randomBytes(count) {
  return globalThis.crypto.getRandomValues(new Uint8Array(count));
}

/** A fresh 256-bit link key. */
export function newLinkKey() {
  return randomBytes(KEY_BYTES);
}

/** The bytes of each part, one after another. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function hkdf(ikm, info) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = {
    name: "HKDF",
    hash: "SHA-256",
    salt: new Uint8Array(0),
    info: utf8.encode(info),
  };
  return new Uint8Array(await subtle.deriveBits(params, key, 256));
}

function checkIterations(iterations) {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new EnvelopeError(`iterations must be ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`);
  }
}

/** The token that proves possession of the link: HKDF(K, "burnlink v1 access"). */
export async function accessToken(linkKey) {
  if (linkKey.length !== KEY_BYTES) throw new EnvelopeError(`the key must be ${KEY_BYTES} bytes`);
  return hkdf(linkKey, INFO_ACCESS);
}

/** PBKDF2-HMAC-SHA256 of UTF-8(NFC(passphrase)): slow on purpose. */
export async function stretchPassphrase(passphrase, salt, iterations) {
  checkIterations(iterations);
  if (typeof passphrase !== "string" || passphrase.length === 0) {
    throw new EnvelopeError("the passphrase must not be empty");
  }
  const secret = utf8.encode(passphrase.normalize("NFC"));
  const key = await subtle.importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash: "SHA-256", salt, iterations };
  return new Uint8Array(await subtle.deriveBits(params, key, 256));
}

/**
 * Every key of envelope v1: `{accessToken, encryptionKey, passphraseProof}` (raw bytes;
 * `passphraseProof` is null without a passphrase).
 */
export async function deriveKeys(linkKey, { passphrase = null, salt = null, iterations = 0 } = {}) {
  const access = await accessToken(linkKey);
  if (passphrase === null) {
    return {
      accessToken: access,
      encryptionKey: await hkdf(linkKey, INFO_ENCRYPT),
      passphraseProof: null,
    };
  }
  const ikm = concat(linkKey, await stretchPassphrase(passphrase, salt, iterations));
  return {
    accessToken: access,
    encryptionKey: await hkdf(ikm, INFO_ENCRYPT),
    passphraseProof: await hkdf(ikm, INFO_PASSPHRASE),
  };
}

/** The additional authenticated data of an envelope, as ASCII bytes. */
export function aad(envelope) {
  let text = `burnlink-envelope/v${VERSION};alg=${ALG};kdf=${envelope.kdf}`;
  if (envelope.kdf === KDF_PBKDF2) text += `;iter=${envelope.iter};salt=${envelope.salt}`;
  return utf8.encode(text);
}

function codePoints(text) {
  return [...text].length;
}

/**
 * Frame a payload: one line of compact JSON header, 0x0A, then the content.
 * `payload` is `{type: "text" | "file", content: Uint8Array, name?, mime?}`.
 */
export function encodePayload(payload) {
  const header = { type: payload.type === "file" ? "file" : "text" };
  if (header.type === "file") {
    for (const [field, limit] of [
      ["name", MAX_NAME_CHARS],
      ["mime", MAX_MIME_CHARS],
    ]) {
      const value = payload[field];
      if (value === null || value === undefined) continue;
      if (typeof value !== "string" || codePoints(value) < 1 || codePoints(value) > limit) {
        throw new EnvelopeError(`${field} must be 1 to ${limit} characters`);
      }
      header[field] = value;
    }
  }
  const head = utf8.encode(JSON.stringify(header));
  if (head.length + 1 > MAX_HEADER_BYTES) {
    throw new EnvelopeError(`the name and type take more than ${MAX_HEADER_BYTES} header bytes`);
  }
  return concat(head, new Uint8Array([0x0a]), payload.content);
}

/** Undo `encodePayload`. Text must be UTF-8; a file's name and mime are strings or null. */
export function decodePayload(bytes) {
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) throw new EnvelopeError("payload header is malformed");
  let header;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, newline)),
    );
  } catch {
    throw new EnvelopeError("payload header is malformed");
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new EnvelopeError("payload header is malformed");
  }
  const content = bytes.slice(newline + 1);
  if (header.type === "text") {
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(content);
    } catch {
      throw new EnvelopeError("text payload is not UTF-8");
    }
    return { type: "text", content, text, name: null, mime: null };
  }
  if (header.type !== "file") throw new EnvelopeError("payload header is malformed");
  const name = header.name ?? null;
  const mime = header.mime ?? null;
  if ((name !== null && typeof name !== "string") || (mime !== null && typeof mime !== "string")) {
    throw new EnvelopeError("payload header is malformed");
  }
  return { type: "file", content, text: null, name, mime };
}

/**
 * Validate a decoded envelope object (docs/crypto.md § The envelope object) and return it.
 * `minIterations` is the least count accepted (the server's policy when sealing).
 */
export function parseEnvelope(obj, { minIterations = MIN_ITERATIONS } = {}) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new EnvelopeError("the envelope must be a JSON object");
  }
  if (obj.v !== VERSION) throw new EnvelopeError("unsupported envelope version");
  if (obj.alg !== ALG) throw new EnvelopeError(`alg must be ${ALG}`);
  if (obj.kdf !== KDF_NONE && obj.kdf !== KDF_PBKDF2) throw new EnvelopeError("unknown kdf");
  const expected =
    obj.kdf === KDF_NONE
      ? ["alg", "ct", "kdf", "nonce", "v"]
      : ["alg", "ct", "iter", "kdf", "nonce", "salt", "v"];
  if (Object.keys(obj).sort().join() !== expected.join()) {
    throw new EnvelopeError("the envelope has the wrong set of fields");
  }
  if (obj.kdf === KDF_PBKDF2) {
    if (!Number.isInteger(obj.iter) || obj.iter < minIterations || obj.iter > MAX_ITERATIONS) {
      throw new EnvelopeError("iter is out of range");
    }
    b64urlDecode(obj.salt, SALT_BYTES);
  }
  b64urlDecode(obj.nonce, NONCE_BYTES);
  if (b64urlDecode(obj.ct).length < TAG_BYTES) throw new EnvelopeError("ct is too short");
  return obj;
}

async function aesKey(encryptionKey, usage) {
  return subtle.importKey("raw", encryptionKey, "AES-GCM", false, [usage]);
}

/**
 * Encrypt `payload` into a v1 envelope. Returns `{envelope, keys}`. `salt` and `nonce` are
 * fixed only by tests; `iterations` should be at least the server's minimum.
 */
export async function seal(
  payload,
  linkKey,
  { passphrase = null, iterations = MIN_ITERATIONS, salt = null, nonce = null } = {},
) {
  const withPassphrase = passphrase !== null;
  const saltBytes = withPassphrase ? (salt ?? randomBytes(SALT_BYTES)) : null;
  const keys = await deriveKeys(linkKey, { passphrase, salt: saltBytes, iterations });
  const nonceBytes = nonce ?? randomBytes(NONCE_BYTES);
  const envelope = { v: VERSION, alg: ALG, kdf: withPassphrase ? KDF_PBKDF2 : KDF_NONE };
  if (withPassphrase) {
    envelope.iter = iterations;
    envelope.salt = b64urlEncode(saltBytes);
  }
  envelope.nonce = b64urlEncode(nonceBytes);
  const params = { name: "AES-GCM", iv: nonceBytes, additionalData: aad(envelope), tagLength: 128 };
  const key = await aesKey(keys.encryptionKey, "encrypt");
  const ct = new Uint8Array(await subtle.encrypt(params, key, encodePayload(payload)));
  envelope.ct = b64urlEncode(ct);
  return { envelope, keys };
}

/** Decrypt a validated envelope with keys from `deriveKeys`; throw `EnvelopeError` if it fails. */
export async function openEnvelope(envelope, keys) {
  const params = {
    name: "AES-GCM",
    iv: b64urlDecode(envelope.nonce, NONCE_BYTES),
    additionalData: aad(envelope),
    tagLength: 128,
  };
  const key = await aesKey(keys.encryptionKey, "decrypt");
  let plain;
  try {
    plain = new Uint8Array(await subtle.decrypt(params, key, b64urlDecode(envelope.ct)));
  } catch {
    throw new EnvelopeError("the secret does not decrypt with this key and passphrase");
  }
  return decodePayload(plain);
}

const MAX_NAME_BYTES = 640;

/**
 * A file name fit for the payload header and for saving: the last path component, without
 * control characters, at most 255 characters and 640 UTF-8 bytes (so the header stays under
 * 1024 bytes; the extension is kept when the name is shortened). Null for a name that cannot
 * be used: empty, "." or "..".
 */
export function safeFileName(name) {
  if (typeof name !== "string") return null;
  const base = name
    .split(/[\\/]/)
    .pop()
    .replace(/[\u0000-\u001f\u007f]/g, "")
    .trim();
  if (base === "" || base === "." || base === "..") return null;
  const dot = base.lastIndexOf(".");
  const ext = dot > 0 && base.length - dot <= 16 ? [...base.slice(dot)] : [];
  let stem = [...base].slice(0, [...base].length - ext.length);
  const fits = () => {
    const joined = stem.join("") + ext.join("");
    return [...joined].length <= MAX_NAME_CHARS && utf8.encode(joined).length <= MAX_NAME_BYTES;
  };
  while (stem.length > 1 && !fits()) stem = stem.slice(0, -1);
  return stem.join("") + ext.join("");
}
