// The UI text: the page's message catalogue (static/i18n/{lang}.json), loaded with the
// integrity hash that the page names, and formatting of counts, sizes and times in the page's
// language. Every message reaches the DOM through textContent (see ui.js).

let messages = {};
let language = "en";

/** Load the catalogue named by `<link id="messages">`; call once before `t`. */
export async function loadMessages() {
  const link = document.getElementById("messages");
  language = document.documentElement.lang || "en";
  const response = await fetch(link.href, {
    integrity: link.integrity,
    credentials: "same-origin",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) throw new Error(`messages: HTTP ${response.status}`);
  messages = await response.json();
}

/**
 * The message `key`, with `{name}` placeholders filled from `values`. A message with plural
 * forms is chosen by `values.count` through Intl.PluralRules.
 */
export function t(key, values = {}) {
  let message = messages[key];
  if (message === undefined) return key;
  if (typeof message === "object") {
    const form = new Intl.PluralRules(language).select(values.count ?? 0);
    message = message[form] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(values, name) ? placed(values[name]) : whole,
  );
}

/**
 * A value as it goes into a message: numbers in the page's language's digits and grouping;
 * on a right-to-left page, text isolated (U+2068 … U+2069) so that an address, a link or a
 * name written left to right keeps its order inside the sentence.
 */
function placed(value) {
  if (typeof value === "number") return new Intl.NumberFormat(language).format(value);
  const text = String(value);
  return document.documentElement.dir === "rtl" ? `\u2068${text}\u2069` : text;
}

/**
 * The message `{prefix}.{value}`, or `value` itself when the catalogue has none: a state, event
 * or agent class named by the server that this page does not know yet.
 */
export function translated(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

/** A date and time in the page's language, in the reader's time zone. */
export function formatDate(value) {
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(value),
  );
}

/** A date and time with its distance from now: "3 Mar 2026, 14:05 (in 3 hours)". */
export function formatWhen(value) {
  return `${formatDate(value)} (${formatRelative(value)})`;
}

/** A time of day in the page's language ("14:05"). */
export function formatTime(value) {
  return new Intl.DateTimeFormat(language, { timeStyle: "short" }).format(new Date(value));
}

/** "in 3 hours", "5 minutes ago": the distance from now to `value`. */
export function formatRelative(value, now = Date.now()) {
  const seconds = Math.round((new Date(value).getTime() - now) / 1000);
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  const format = new Intl.RelativeTimeFormat(language, { numeric: "auto" });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(seconds, "second");
}

/** "in 5 minutes": when a client refused for going too fast (`retry_after` s) may try again. */
export function formatRetry(seconds, now = Date.now()) {
  const wait = Number.isInteger(seconds) && seconds > 0 ? seconds : 60;
  return formatRelative(now + wait * 1000, now);
}

/** A size in bytes for people: "512 bytes", "1.5 MB". */
export function formatBytes(size) {
  if (size < 1024) return t("size.bytes", { count: size });
  const [unit, scale] = size < 1024 * 1024 ? ["kilobyte", 1024] : ["megabyte", 1024 * 1024];
  return new Intl.NumberFormat(language, {
    style: "unit",
    unit,
    maximumFractionDigits: 1,
  }).format(size / scale);
}

/** "Germany (DE)": a country's name in the page's language, with its code. */
export function formatCountry(code) {
  let name = null;
  try {
    name = new Intl.DisplayNames(language, { type: "region", fallback: "none" }).of(code);
  } catch {
    name = null;
  }
  return name && name !== code ? `${name} (${code})` : code;
}

/**
 * "alice@example.com (MFA)": the signed-in recipient a receipt event names (`viewer`), with
 * whether their sign-in had a second factor. Text only: callers put it in `textContent`.
 */
export function formatViewer(viewer) {
  const email =
    typeof viewer.email === "string" && viewer.email !== "" ? viewer.email : t("viewer.no_email");
  return t(viewer.mfa === true ? "viewer.mfa" : "viewer.no_mfa", { email });
}

/** "Germany (DE), France (FR) and Spain (ES)", as the page's language lists things. */
export function formatList(items) {
  try {
    return new Intl.ListFormat(language, { style: "long", type: "conjunction" }).format(items);
  } catch {
    return items.join(", ");
  }
}
