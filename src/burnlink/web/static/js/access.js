// Access rules as the pages read them from people (docs/access.md): lists of networks and
// country codes, the recipient's address and the one-time code. These checks only catch typing
// mistakes early, with a clear message; the server is the judge of every rule. No DOM, no
// network: this module also runs under Node for tests/js/access.test.mjs.

/** At most this many networks in `allowed_ips` (the server's limit too). */
export const MAX_NETWORKS = 50;
/** At most this many `recipients`, each of at most MAX_RECIPIENT_CHARS (the server's limits). */
export const MAX_RECIPIENTS = 20;
export const MAX_RECIPIENT_CHARS = 254;
/** Digits in a mailed one-time code. */
export const OTP_DIGITS = 6;
/** The server mails at most one code a minute for a secret while a code is still valid. */
export const CODE_RESEND_MS = 60_000;

const COUNTRY_RE = /^[A-Za-z]{2}$/;
const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;
// Deliberately loose, like the server's: one @, something before it, a dotted domain.
const EMAIL_RE = /^[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;

/** The entries of a list typed one a line or separated by commas (or spaces), trimmed. */
export function splitList(text) {
  return String(text ?? "")
    .split(/[\s,;]+/)
    .filter((entry) => entry !== "");
}

/**
 * Recipients typed one a line or separated by commas, trimmed, as typed otherwise: an entry
 * may hold spaces (the server refuses it, and says so next to the field).
 */
export function splitRecipients(text) {
  return String(text ?? "")
    .split(/[\n,]+/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

/** The entries that are not two letters (ISO 3166 alpha-2 shape), in their order. */
export function badCountries(entries) {
  return entries.filter((entry) => !COUNTRY_RE.test(entry));
}

/** Country codes upper-cased, each once, in their order. */
export function normaliseCountries(entries) {
  return [...new Set(entries.map((entry) => entry.toUpperCase()))];
}

function ipv4(text) {
  const match = IPV4_RE.exec(text);
  return match !== null && match.slice(1).every((part) => Number(part) <= 255);
}

function ipv6(text) {
  if (!IPV6_RE.test(text) || !text.includes(":")) return false;
  const groups = text.split("::");
  if (groups.length > 2) return false;
  const parts = groups.flatMap((group) => (group === "" ? [] : group.split(":")));
  // An IPv4 tail (::ffff:192.0.2.1) counts as two groups.
  const tail = parts.length > 0 && parts[parts.length - 1].includes(".");
  if (tail && !ipv4(parts.pop())) return false;
  if (!parts.every((part) => /^[0-9A-Fa-f]{1,4}$/.test(part))) return false;
  const count = parts.length + (tail ? 2 : 0);
  return groups.length === 2 ? count <= 7 : count === 8;
}

/** Whether `entry` has the shape of an IP address or a CIDR network (IPv4 or IPv6). */
export function looksLikeNetwork(entry) {
  const [address, prefix, ...rest] = entry.split("/");
  if (rest.length > 0) return false;
  const v4 = ipv4(address);
  if (!v4 && !ipv6(address)) return false;
  if (prefix === undefined) return true;
  if (v4 && ipv4(prefix)) return true; // a netmask: 10.0.0.0/255.0.0.0
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (v4 ? 32 : 128);
}

/** The entries that do not look like an IP address or CIDR network, in their order. */
export function badNetworks(entries) {
  return entries.filter((entry) => !looksLikeNetwork(entry));
}

/** Whether `text` looks like one email address (the code reaching it is the real proof). */
export function looksLikeEmail(text) {
  return text.length <= 254 && EMAIL_RE.test(text);
}

/** The code as the server wants it (six digits), from what was typed or pasted; else null. */
export function normaliseOtp(text) {
  const digits = String(text ?? "").replace(/[\s-]/g, "");
  return new RegExp(`^\\d{${OTP_DIGITS}}$`).test(digits) ? digits : null;
}

/** Whole seconds until another code may be mailed, 0 when one may be asked for now. */
export function resendWait(sentAt, now = Date.now()) {
  if (sentAt === null) return 0;
  return Math.max(0, Math.ceil((sentAt + CODE_RESEND_MS - now) / 1000));
}
