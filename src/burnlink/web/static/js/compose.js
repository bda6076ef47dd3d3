// The compose page (/): encrypt a text or a file in this browser, store the envelope, show the
// link (with its key in the #fragment), its QR code, the manage link and the expiry. A
// signed-in sender can name the secret (its label, on "My secrets") and, under "More options",
// bind it to signed-in recipients (with a second factor, if asked). Under
// "More options" the sender can add access rules (docs/access.md); the server's own policy
// (a required passphrase, its countries, whether it can mail codes) is shown from
// GET /api/v1/policy, and for a signed-in sender the rules of their teams (team_policy.js).

import {
  MAX_NETWORKS,
  MAX_RECIPIENTS,
  MAX_RECIPIENT_CHARS,
  badCountries,
  badNetworks,
  looksLikeEmail,
  normaliseCountries,
  splitList,
  splitRecipients,
} from "./access.js";
import { setupAccount } from "./account.js";
import * as api from "./api.js";
import {
  MAX_MIME_CHARS,
  MAX_PASSPHRASE_CHARS,
  MIN_ITERATIONS,
  b64urlEncode,
  newLinkKey,
  randomBytes,
  safeFileName,
  seal,
} from "./envelope.js";
import {
  formatBytes,
  formatCountry,
  formatDate,
  formatList,
  formatRelative,
  formatRetry,
  loadMessages,
  t,
} from "./i18n.js";
import {
  GENERATED_BITS,
  GENERATED_BYTES,
  makePassphrase,
  strengthBits,
  strengthLevel,
} from "./passphrase.js";
import { qrSvg } from "./qr.js";
import { holdLanguage } from "./language.js";
import { applyTeamPolicy } from "./team_policy.js";
import { byId, failed, setError, setText, setupCopyButtons, show, whileBusy } from "./ui.js";

// 32 letters and digits without look-alikes (0/o, 1/l): 5 bits a character.

const form = byId("compose");
const secretField = byId("secret");
const fileField = byId("file");
const passphraseField = byId("passphrase");
const errorBox = byId("compose-error");
const status = byId("compose-status");
const result = byId("result");
let generatedPassphrase = null;
let policy = null;
let signedIn = false;

// The label field is on the page only when the server has sign-in (and shown once signed in).
const labelField = byId("label");
// So are the recipients (shown once signed in, when the policy says the server takes them).
const recipientsField = byId("recipients");
const requireMfaField = byId("require-mfa");

// The controls a refusal can point at: the API's field name and the control's id. Each
// control has an error line `{id}-error` tied to it with aria-describedby.
const FIELDS = [
  ["allowed_ips", "allowed-ips"],
  ["allowed_countries", "allowed-countries"],
  ["denied_countries", "denied-countries"],
  ["recipient_email", "recipient-email"],
  ["notify_url", "notify-url"],
  ["passphrase", "passphrase"],
  ["max_views", "views"],
  ["ttl", "ttl"],
  ...(labelField === null ? [] : [["label", "label"]]),
  ...(recipientsField === null
    ? []
    : [
        ["recipients", "recipients"],
        ["require_mfa", "require-mfa"],
      ]),
];

function fileChosen() {
  return fileField.files.length > 0 ? fileField.files[0] : null;
}

function tooLargeMessage(size) {
  return t("compose.error_too_large", {
    size: formatBytes(size),
    limit: formatBytes(policy.max_bytes),
  });
}

function onFileChange() {
  const file = fileChosen();
  show(byId("file-chosen"), file !== null);
  secretField.disabled = file !== null;
  setError(errorBox, "");
  if (file === null) return;
  setText(
    byId("file-chosen-text"),
    t("compose.file_chosen", {
      name: safeFileName(file.name) ?? "?",
      size: formatBytes(file.size),
    }),
  );
  if (policy !== null && file.size > policy.max_bytes)
    setError(errorBox, tooLargeMessage(file.size));
}

function removeFile() {
  fileField.value = "";
  onFileChange();
  updateLanguageHold();
  fileField.focus();
}

function updateStrength() {
  const value = passphraseField.value;
  let message;
  if (value === "") {
    message = t(policy?.require_passphrase ? "strength.required" : "strength.empty");
  } else {
    const bits = value === generatedPassphrase ? GENERATED_BITS : strengthBits(value);
    message = t(`strength.${strengthLevel(bits)}`, { bits });
  }
  setText(byId("strength"), message);
  show(byId("passphrase-copy"), value !== "" && value === generatedPassphrase);
}

function setPassphraseVisible(visible) {
  passphraseField.type = visible ? "text" : "password";
  const toggle = byId("passphrase-toggle");
  toggle.setAttribute("aria-pressed", String(visible));
  setText(toggle, t(visible ? "compose.passphrase_hide" : "compose.passphrase_show"));
}

function generatePassphrase() {
  generatedPassphrase = makePassphrase(randomBytes(GENERATED_BYTES));
  passphraseField.value = generatedPassphrase;
  setPassphraseVisible(true);
  updateStrength();
  passphraseField.focus();
}

/** A problem with the input, whose message is for the user; `control` is the field's id. */
class InputError extends Error {
  constructor(message, control = null) {
    super(message);
    this.control = control;
  }
}

function labelOf(control) {
  return control.labels?.[0]?.textContent.trim() ?? control.id;
}

/** Mark the control `id` as refused with `message`, open its section and move focus to it. */
function markField(id, message) {
  const control = byId(id);
  setError(byId(`${id}-error`), message);
  control.setAttribute("aria-invalid", "true");
  const more = byId("more-options");
  if (more.contains(control)) more.open = true;
  control.focus();
  return t("compose.error_in_field", { label: labelOf(control), message });
}

function clearField(id) {
  setError(byId(`${id}-error`), "");
  byId(id).removeAttribute("aria-invalid");
}

function clearFields() {
  for (const [, id] of FIELDS) clearField(id);
  // The content fields: only the page itself refuses those (empty, too large, unreadable).
  clearField("secret");
  clearField("file");
}

/** The control a server refusal names (`allowed_countries`, `allowed_countries.1`, …). */
function controlFor(field) {
  if (typeof field !== "string") return null;
  const found = FIELDS.find(([name]) => field === name || field.startsWith(`${name}.`));
  return found ? found[1] : null;
}

/** Apply the server's policy to the page: required passphrase, countries, mail. */
function applyPolicy() {
  if (policy === null) return;
  const required = policy.require_passphrase === true;
  setText(
    byId("passphrase-label"),
    t(required ? "compose.passphrase_required" : "compose.passphrase"),
  );
  passphraseField.required = required;
  const countries = Array.isArray(policy.allowed_countries) ? policy.allowed_countries : [];
  const note = byId("policy-countries");
  show(note, countries.length > 0);
  setText(
    note,
    countries.length > 0
      ? t("compose.policy_countries", { countries: formatList(countries.map(formatCountry)) })
      : "",
  );
  const mail = policy.recipient_verification === true;
  show(byId("recipient-field"), mail);
  show(byId("recipient-unavailable"), !mail);
  if (!mail) byId("recipient-email").value = "";
  if (recipientsField !== null) {
    const bound = signedIn && policy.recipients === true;
    show(byId("recipients-field"), bound);
    if (!bound) {
      recipientsField.value = "";
      requireMfaField.checked = false;
    }
    updateRequireMfa();
  }
  const notify = policy.notifications === true;
  show(byId("notify-field"), notify);
  if (!notify) byId("notify-url").value = "";
  if (signedIn) applyTeamPolicy(policy);
  updateStrength();
}

/** The second factor can be asked for only with at least one recipient (the API's rule). */
function updateRequireMfa() {
  if (recipientsField === null) return;
  const any = splitRecipients(recipientsField.value).length > 0;
  requireMfaField.disabled = !any;
  if (!any) requireMfaField.checked = false;
}

/**
 * The signed-in recipients and whether they need a second factor: none when the field is
 * absent or hidden; an InputError past the API's count or length. Their shape is the
 * server's to judge (its refusal is shown next to the field).
 */
function readRecipients() {
  if (recipientsField === null || byId("recipients-field").hidden) {
    return { recipients: [], requireMfa: false };
  }
  const recipients = splitRecipients(recipientsField.value);
  if (recipients.length > MAX_RECIPIENTS) {
    throw new InputError(
      t("compose.error_recipients_many", { max: MAX_RECIPIENTS }),
      "recipients",
    );
  }
  if (recipients.some((entry) => [...entry].length > MAX_RECIPIENT_CHARS)) {
    throw new InputError(
      t("compose.error_recipients_long", { max: MAX_RECIPIENT_CHARS }),
      "recipients",
    );
  }
  return { recipients, requireMfa: recipients.length > 0 && requireMfaField.checked };
}

/** An absolute http(s) URL without user info, as the server accepts for notify_url. */
function looksLikeWebUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (
    (url.protocol === "https:" || url.protocol === "http:") &&
    url.hostname !== "" &&
    url.username === "" &&
    url.password === ""
  );
}

/** The access rules of "More options", or an InputError naming the control to fix. */
function readRules() {
  const allowedIps = splitList(byId("allowed-ips").value);
  const badIps = badNetworks(allowedIps);
  if (badIps.length > 0) {
    throw new InputError(
      t("compose.error_allowed_ips", { entries: badIps.slice(0, 3).join(", ") }),
      "allowed-ips",
    );
  }
  if (allowedIps.length > MAX_NETWORKS) {
    throw new InputError(t("compose.error_allowed_ips_many", { max: MAX_NETWORKS }), "allowed-ips");
  }
  const lists = {};
  for (const id of ["allowed-countries", "denied-countries"]) {
    const entries = splitList(byId(id).value);
    const bad = badCountries(entries);
    if (bad.length > 0) {
      throw new InputError(
        t("compose.error_countries", { entries: bad.slice(0, 3).join(", ") }),
        id,
      );
    }
    lists[id] = normaliseCountries(entries);
  }
  const both = lists["denied-countries"].filter((c) => lists["allowed-countries"].includes(c));
  if (both.length > 0) {
    throw new InputError(
      t("compose.error_countries_both", { entries: both.join(", ") }),
      "denied-countries",
    );
  }
  let recipientEmail = null;
  const email = byId("recipient-email").value.trim();
  if (policy.recipient_verification === true && email !== "") {
    if (!looksLikeEmail(email)) {
      throw new InputError(t("compose.error_recipient_email"), "recipient-email");
    }
    recipientEmail = email;
  }
  let notifyUrl = null;
  const url = byId("notify-url").value.trim();
  if (policy.notifications === true && url !== "") {
    if (!looksLikeWebUrl(url)) throw new InputError(t("compose.error_notify_url"), "notify-url");
    notifyUrl = url;
  }
  return {
    allowedIps,
    allowedCountries: lists["allowed-countries"],
    deniedCountries: lists["denied-countries"],
    recipientEmail,
    notifyUrl,
    ...readRecipients(),
  };
}

/**
 * The sender's own name for the secret (sent as typed, not encrypted), or null when the field
 * is absent, hidden (not signed in) or empty; an InputError for a control character.
 */
function readLabel() {
  if (labelField === null || byId("label-field").hidden) return null;
  const label = labelField.value.trim();
  if (label === "") return null;
  if (/\p{C}/u.test(label)) throw new InputError(t("compose.error_label"), "label");
  if ([...label].length > labelField.maxLength) {
    throw new InputError(t("compose.invalid_label", { max: labelField.maxLength }), "label");
  }
  return label;
}

/** Read the form into what to seal, or throw an InputError. */
async function readInput() {
  const file = fileChosen();
  let payload;
  if (file !== null) {
    if (file.size > policy.max_bytes) throw new InputError(tooLargeMessage(file.size), "file");
    let content;
    try {
      content = new Uint8Array(await file.arrayBuffer());
    } catch {
      throw new InputError(t("compose.error_file_unreadable"), "file");
    }
    if (content.length === 0) throw new InputError(t("compose.error_empty"), "file");
    const mime = file.type && [...file.type].length <= MAX_MIME_CHARS ? file.type : null;
    payload = { type: "file", content, name: safeFileName(file.name), mime };
  } else {
    if (secretField.value === "") throw new InputError(t("compose.error_empty"), "secret");
    const content = new TextEncoder().encode(secretField.value);
    if (content.length > policy.max_bytes) {
      throw new InputError(tooLargeMessage(content.length), "secret");
    }
    payload = { type: "text", content };
  }
  const views = Number(byId("views").value);
  if (!Number.isInteger(views) || views < 1 || views > policy.max_views) {
    throw new InputError(t("compose.error_views", { max: policy.max_views }), "views");
  }
  const passphrase = passphraseField.value === "" ? null : passphraseField.value;
  if (passphrase === null && policy.require_passphrase === true) {
    throw new InputError(t("compose.error_passphrase_required"), "passphrase");
  }
  if (passphrase !== null && [...passphrase].length > MAX_PASSPHRASE_CHARS) {
    throw new InputError(
      t("compose.error_passphrase_long", { max: MAX_PASSPHRASE_CHARS }),
      "passphrase",
    );
  }
  const rules = readRules();
  const label = readLabel();
  const ttl = Number(byId("ttl").value);
  return { payload, views, passphrase, ttl, rules, label, split: byId("split").checked };
}

/** What a refused field needs, in the page's words (the server's reason is in English). */
async function fieldMessage(id) {
  // The server's policy may have changed since the page loaded: show the current one.
  try {
    policy = await api.policy({ session: signedIn });
    applyPolicy();
  } catch {
    // Keep the policy we had; the message below still applies.
  }
  switch (id) {
    case "allowed-ips":
      return t("compose.invalid_allowed_ips", { max: MAX_NETWORKS });
    case "allowed-countries":
    case "denied-countries":
      return t("compose.invalid_countries");
    case "recipient-email":
      return policy?.recipient_verification === false
        ? t("compose.error_recipient_unavailable")
        : t("compose.error_recipient_email");
    case "notify-url":
      return t("compose.invalid_notify_url");
    case "passphrase":
      return t("compose.error_passphrase_required");
    case "views":
      return t("compose.error_views", { max: policy?.max_views ?? 1 });
    case "recipients":
      return t("compose.invalid_recipients", { max: MAX_RECIPIENTS });
    case "require-mfa":
      return t("compose.invalid_require_mfa");
    case "label":
      return t("compose.invalid_label", { max: labelField.maxLength });
    default:
      return t("compose.invalid_ttl");
  }
}

async function apiErrorMessage(error) {
  if (error.code === "network") return t("compose.error_network");
  if (error.status === 413 && policy !== null) {
    return t("compose.error_too_large", {
      size: "?",
      limit: formatBytes(error.limit ?? policy.max_bytes),
    });
  }
  const control = error.status === 422 ? controlFor(error.field) : null;
  if (control !== null) {
    const message = await fieldMessage(control);
    if (control === "recipient-email" && byId("recipient-field").hidden) {
      return t("compose.error_recipient_unavailable");
    }
    if (control === "notify-url" && byId("notify-field").hidden) {
      return t("compose.error_notify_unavailable");
    }
    return markField(control, message);
  }
  if (error.code === "team_policy") {
    // The sender's teams refused it: the server's words, next to the control it names.
    const message = t("compose.error_team_policy", { message: error.message });
    const named = controlFor(error.field);
    return named !== null && !byId(named).closest("[hidden]") ? markField(named, message) : message;
  }
  if (error.code === "ip_denied") return t("compose.error_create_ip_denied");
  if (error.code === "rate_limited") {
    return t("compose.error_rate_limited", { relative: formatRetry(error.retryAfter) });
  }
  return t("compose.error_server", { message: error.message });
}

function showRules(rules) {
  const items = [];
  if (rules.allowedIps.length > 0) {
    items.push(t("result.rule_ips", { networks: rules.allowedIps.join(", ") }));
  }
  if (rules.allowedCountries.length > 0) {
    const countries = formatList(rules.allowedCountries.map(formatCountry));
    items.push(t("result.rule_allowed_countries", { countries }));
  }
  if (rules.deniedCountries.length > 0) {
    const countries = formatList(rules.deniedCountries.map(formatCountry));
    items.push(t("result.rule_denied_countries", { countries }));
  }
  if (rules.recipientEmail !== null) {
    items.push(t("result.rule_recipient", { email: rules.recipientEmail }));
  }
  if (rules.recipients.length > 0) {
    items.push(t("result.rule_recipients", { recipients: rules.recipients.join(", ") }));
    if (rules.requireMfa) items.push(t("result.rule_require_mfa"));
  }
  if (rules.notifyUrl !== null) items.push(t("result.rule_notify", { url: rules.notifyUrl }));
  byId("result-rules-list").replaceChildren(
    ...items.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }),
  );
  show(byId("result-rules"), items.length > 0);
}

function showResult(created, linkKey, input) {
  const key = b64urlEncode(linkKey);
  const keyless = created.url.split("#")[0];
  const link = input.split ? keyless : `${keyless}#${key}`;
  byId("result-link").value = link;
  setText(byId("result-link-label"), t(input.split ? "result.link_split" : "result.link"));
  byId("result-key").value = input.split ? key : "";
  show(byId("result-key-field"), input.split);
  show(byId("result-passphrase"), input.passphrase !== null);
  showRules(input.rules);
  byId("result-manage").value = created.manage_url;
  byId("result-manage-open").href = created.manage_url;
  setText(
    byId("result-expires"),
    t("result.expires", {
      relative: formatRelative(created.expires_at),
      date: formatDate(created.expires_at),
      views: t("views.count", { count: created.max_views }),
    }),
  );
  const qr = byId("result-qr");
  try {
    qr.replaceChildren(qrSvg(link, t("result.qr")));
    setText(byId("result-qr-caption"), t("result.qr"));
  } catch {
    qr.replaceChildren();
    setText(byId("result-qr-caption"), t("result.qr_too_long"));
  }
  show(form, false);
  show(result, true);
  updateLanguageHold();
  result.focus();
}

function clearInput() {
  form.reset();
  fileField.value = "";
  onFileChange();
  generatedPassphrase = null;
  setPassphraseVisible(false);
  clearFields();
  updateRequireMfa();
  updateStrength();
}

async function onSubmit(event) {
  event.preventDefault();
  setError(errorBox, "");
  clearFields();
  await whileBusy(byId("create"), form, async () => {
    try {
      if (policy === null) {
        setText(status, t("compose.status_loading"));
        policy = await api.policy({ session: signedIn });
        applyPolicy();
      }
      const input = await readInput();
      setText(
        status,
        t(input.passphrase === null ? "compose.status_encrypting" : "compose.status_stretching"),
      );
      const linkKey = newLinkKey();
      const iterations = Math.max(MIN_ITERATIONS, policy.pbkdf2_iterations);
      const { envelope, keys } = await seal(input.payload, linkKey, {
        passphrase: input.passphrase,
        iterations,
      });
      setText(status, t("compose.status_uploading"));
      const created = await api.createSecret({
        envelope,
        accessToken: keys.accessToken,
        passphraseProof: keys.passphraseProof,
        ttl: input.ttl,
        maxViews: input.views,
        rules: input.rules,
        label: input.label,
      });
      clearInput();
      setText(status, t("compose.status_done"));
      showResult(created, linkKey, input);
    } catch (error) {
      setText(status, "");
      let message;
      if (error instanceof api.ApiError) message = await apiErrorMessage(error);
      else if (error instanceof InputError && error.control !== null)
        message = markField(error.control, error.message);
      else if (error instanceof InputError) message = error.message;
      else message = t("compose.error_unexpected", { message: String(error?.message ?? error) });
      setError(errorBox, message);
    }
  });
}

/** Keep the language while the page holds a typed secret, a chosen file or a new link. */
function updateLanguageHold() {
  const holding = !result.hidden || secretField.value !== "" || fileChosen() !== null;
  holdLanguage(holding ? t("language.held") : null);
}

function another() {
  for (const id of ["result-link", "result-key", "result-manage"]) byId(id).value = "";
  byId("result-manage-open").href = "#";
  byId("result-qr").replaceChildren();
  byId("result-rules-list").replaceChildren();
  setText(status, "");
  show(result, false);
  show(form, true);
  updateLanguageHold();
  secretField.focus();
}

async function main() {
  await loadMessages();
  setupCopyButtons();
  fileField.addEventListener("change", onFileChange);
  fileField.addEventListener("change", updateLanguageHold);
  secretField.addEventListener("input", updateLanguageHold);
  byId("file-remove").addEventListener("click", removeFile);
  passphraseField.addEventListener("input", updateStrength);
  byId("passphrase-toggle").addEventListener("click", () =>
    setPassphraseVisible(passphraseField.type === "password"),
  );
  byId("passphrase-generate").addEventListener("click", generatePassphrase);
  for (const [, id] of FIELDS) byId(id).addEventListener("input", () => clearField(id));
  recipientsField?.addEventListener("input", updateRequireMfa);
  form.addEventListener("submit", onSubmit);
  byId("another").addEventListener("click", another);
  if (!globalThis.crypto?.subtle) {
    setError(errorBox, t("compose.error_crypto"));
    byId("create").disabled = true;
    return;
  }
  try {
    policy = await api.policy();
  } catch {
    policy = null; // Fetched again on submit, where a failure is reported.
  }
  const user = await setupAccount();
  signedIn = user !== null;
  if (signedIn) {
    try {
      policy = await api.policy({ session: true }); // the rules of the sender's teams
    } catch {
      // Keep the server's; the create is held to the teams' rules all the same.
    }
  }
  // A label names the secret on "My secrets", which only a signed-in sender has.
  if (labelField !== null) show(byId("label-field"), user !== null);
  applyPolicy();
  onFileChange();
  document.documentElement.dataset.ready = "true";
}

main().catch(failed);
