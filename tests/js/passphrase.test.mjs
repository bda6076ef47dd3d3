// The compose page's passphrases (static/js/passphrase.js): the generated one's shape and
// strength, and the estimate of a typed one. Run with `node --test tests/js/`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  GENERATED_ALPHABET,
  GENERATED_BITS,
  GENERATED_BYTES,
  makePassphrase,
  strengthBits,
  strengthLevel,
} from "../../src/burnlink/web/static/js/passphrase.js";

test("a generated passphrase is four groups of five letters of the alphabet, 100 bits", () => {
  const bytes = Uint8Array.from({ length: GENERATED_BYTES }, (_, i) => i * 13);
  const made = makePassphrase(bytes);
  assert.match(made, /^[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}$/);
  assert.ok([...made.replaceAll("-", "")].every((c) => GENERATED_ALPHABET.includes(c)));
  assert.equal(GENERATED_ALPHABET.length, 32); // 256 is a multiple: no bias
  assert.equal(GENERATED_BITS, 100);
  assert.equal(makePassphrase(new Uint8Array(GENERATED_BYTES)), "aaaaa-aaaaa-aaaaa-aaaaa");
  assert.equal(makePassphrase(new Uint8Array(GENERATED_BYTES).fill(255)), "99999-99999-99999-99999");
});

test("a generated passphrase needs exactly its number of random bytes", () => {
  assert.throws(() => makePassphrase(new Uint8Array(GENERATED_BYTES - 1)), RangeError);
});

test("typed passphrases: words count as words, repeats count little", () => {
  assert.equal(strengthLevel(strengthBits("")), "weak");
  assert.equal(strengthLevel(strengthBits("aaaaaaaa1")), "weak");
  assert.ok(strengthBits("correct horse battery staple") >= 44);
  assert.ok(strengthBits("tr0ub4dor&3") > strengthBits("troubador"));
  assert.ok(strengthBits("111111111111") < strengthBits("739201846253"));
  assert.equal(strengthLevel(39), "weak");
  assert.equal(strengthLevel(40), "fair");
  assert.equal(strengthLevel(60), "strong");
  assert.equal(strengthLevel(80), "very_strong");
});
