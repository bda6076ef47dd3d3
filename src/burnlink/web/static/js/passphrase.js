// Passphrases on the compose page: a generated one (four dash-separated groups of five
// letters from a 32-letter alphabet without look-alikes: 100 bits), and a rough estimate of
// how strong a typed one is. Pure functions; the page wires them to its fields.

export const GENERATED_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";
export const GENERATED_GROUPS = 4;
export const GENERATED_GROUP_LENGTH = 5;
/** How many random bytes `makePassphrase` takes. */
export const GENERATED_BYTES = GENERATED_GROUPS * GENERATED_GROUP_LENGTH;
/** The strength of a generated passphrase, in bits. */
export const GENERATED_BITS = Math.floor(
  GENERATED_GROUPS * GENERATED_GROUP_LENGTH * Math.log2(GENERATED_ALPHABET.length),
);

// A run of letters counts like a dictionary word: about 11 bits (a 2,000-word list), plus
// 2 bits a letter past the eighth. Other characters count by the classes they come from.
const WORD_BITS = 11;
const WORD_LETTERS = 8;
const EXTRA_LETTER_BITS = 2;

/**
 * A passphrase from `bytes` (GENERATED_BYTES random bytes, from `crypto.getRandomValues`).
 * Rejection sampling is not needed: 256 is a multiple of the alphabet's 32 letters.
 */
export function makePassphrase(bytes) {
  if (bytes.length !== GENERATED_BYTES) {
    throw new RangeError(`needs ${GENERATED_BYTES} random bytes`);
  }
  const letters = [...bytes].map((byte) => GENERATED_ALPHABET[byte % GENERATED_ALPHABET.length]);
  const groups = [];
  for (let i = 0; i < letters.length; i += GENERATED_GROUP_LENGTH) {
    groups.push(letters.slice(i, i + GENERATED_GROUP_LENGTH).join(""));
  }
  return groups.join("-");
}

/** About how many bits of guessing a typed passphrase costs: a hint, not a guarantee. */
export function strengthBits(passphrase) {
  let bits = 0;
  const rest = passphrase.replace(/\p{L}{3,}/gu, (word) => {
    bits += WORD_BITS + Math.max(0, [...word].length - WORD_LETTERS) * EXTRA_LETTER_BITS;
    return "";
  });
  const chars = [...rest];
  let pool = 0;
  if (/[a-z]/.test(rest)) pool += 26;
  if (/[A-Z]/.test(rest)) pool += 26;
  if (/[0-9]/.test(rest)) pool += 10;
  if (/[^A-Za-z0-9]/.test(rest)) pool += 33;
  // Repeated characters add little: count each distinct one fully, repeats at a quarter.
  const distinct = new Set(chars).size;
  const effective = distinct + (chars.length - distinct) / 4;
  return Math.floor(bits + effective * Math.log2(Math.max(pool, 2)));
}

/** The strength message's level for `bits`: weak, fair, strong or very_strong. */
export function strengthLevel(bits) {
  return bits < 40 ? "weak" : bits < 60 ? "fair" : bits < 80 ? "strong" : "very_strong";
}
