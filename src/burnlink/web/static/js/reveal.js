// The reveal page (/s/{id}#key). Loading it consumes nothing: it asks the API about the secret
// (views and time left, passphrase parameters) and takes a view only when the reader clicks
// Reveal. Decryption happens here; the key and the passphrase are never sent.
//
// A secret may name a recipient (docs/access.md): the first Reveal then has a code mailed
// (401 verification_required) and takes nothing; the reader types the code, and the next
// call sends it as `otp`, with the passphrase proof when the secret has a passphrase. The
// server checks the code before the passphrase, so the first call derives no proof.
//
// A secret may be bound to signed-in recipients (`sign_in` in its metadata): the page says so
// before Reveal, and says who is signed in. The reveal then carries the session cookie and its
// CSRF token. An anonymous reader (401 with `login_url`) is offered "Sign in": the link's key
// is kept in this tab's sessionStorage for the round trip through the provider only, put back
// in the address bar when /s/{id} opens again, and removed from storage at once.

import { normaliseOtp, resendWait } from "./access.js";
import { holdLanguage } from "./language.js";
import * as api from "./api.js";
import {
  EnvelopeError,
  KDF_NONE,
  KDF_PBKDF2,
  KEY_BYTES,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  SALT_BYTES,
  accessToken,
  b64urlDecode,
  b64urlEncode,
  deriveKeys,
  openEnvelope,
  parseEnvelope,
  safeFileName,
} from "./envelope.js";
import {
  formatBytes,
  formatDate,
  formatRelative,
  formatRetry,
  formatTime,
  loadMessages,
  t,
} from "./i18n.js";
import {
  byId,
  failed,
  fragment,
  pageId,
  setError,
  setText,
  setupCopyButtons,
  show,
  whileBusy,
} from "./ui.js";

const DEFAULT_FILE_NAME = "burnlink-secret";
const MAX_TEXT_ROWS = 20;

const secretId = pageId();
const status = byId("reveal-status");
const keyForm = byId("key-form");
const revealForm = byId("reveal-form");
const revealError = byId("reveal-error");
const passphraseInput = byId("reveal-passphrase");
const codeField = byId("code-field");
const otpInput = byId("otp");
let linkKey = null;
let keyWasTyped = false;
let info = null;
let revealedFile = null;
// Whether the code step is shown, and when the server last said a code was mailed (while that
// code can still be used: the server mails no other for a minute then).
let codeAsked = false;
let codeSentAt = null;
// Who is signed in (GET /api/v1/me), asked only for a secret bound to signed-in recipients.
let signedIn = null;
// Where the server said to sign in (401 login_required or fresh_login_required).
let loginUrl = null;

// The link's key, kept in this tab only while the reader signs in (docs/web.md).
const KEPT_KEY = `burnlink.reveal.key.${secretId}`;

// Refusals of the signed-in user (nothing was used up), with their title and text.
const IDENTITY_REFUSALS = {
  recipient_mismatch: ["denied.recipient_title", "denied.recipient_text"],
  mfa_required: ["denied.mfa_title", "denied.mfa_text"],
};

// Refusals that end the visit (nothing was used up), with their title and text.
const REFUSALS = {
  ip_denied: ["denied.ip_title", "denied.ip_text"],
  geo_denied: ["denied.geo_title", "denied.geo_text"],
  rate_limited: ["denied.rate_title", "denied.rate_text"],
};

/** A problem the reader should see, in the page's words. */
class RevealError extends Error {}

function decodeKey(text) {
  // Accept the key alone or a whole link pasted into the key field.
  const candidate = text.includes("#") ? text.slice(text.lastIndexOf("#") + 1) : text;
  try {
    return b64urlDecode(candidate.trim(), KEY_BYTES);
  } catch {
    return null;
  }
}

function showGone(message = null) {
  for (const element of [keyForm, revealForm, byId("denied")]) show(element, false);
  setText(status, "");
  setText(
    byId("gone-text"),
    message ?? `${t("gone.text")}${keyWasTyped ? ` ${t("gone.key_hint")}` : ""}`,
  );
  const gone = byId("gone");
  show(gone, true);
  gone.focus();
  if (keyWasTyped && message === null) {
    // A mistyped key looks like a gone secret; let the reader try again.
    show(keyForm, true);
  }
  linkKey = null;
}

function askForKey(errorMessage = null) {
  show(keyForm, true);
  setText(status, "");
  const error = byId("key-error");
  setError(error, errorMessage);
  byId("key").setAttribute("aria-invalid", String(errorMessage !== null));
  byId("key").focus();
}

function refusal(error) {
  return error instanceof api.ApiError && Object.hasOwn(REFUSALS, error.code);
}

/** An IP, country or rate refusal: say so, in words; the secret itself is untouched. */
function showDenied(error) {
  const [title, text] = REFUSALS[error.code];
  for (const element of [keyForm, revealForm, byId("gone")]) show(element, false);
  setText(status, "");
  setText(byId("denied-title"), t(title));
  setText(byId("denied-text"), t(text, { relative: formatRetry(error.retryAfter) }));
  const denied = byId("denied");
  show(denied, true);
  denied.focus();
}

function signedInName() {
  return signedIn?.email ?? signedIn?.subject ?? "";
}

/** Say that the secret is for signed-in recipients, and who is signed in (if anyone). */
async function showSignInNote(signIn) {
  const note = byId("signin-note");
  show(note, signIn !== null);
  if (signIn === null) {
    setText(note, "");
    return;
  }
  if (signedIn === null) {
    try {
      signedIn = await api.me();
      api.useSession(signedIn.csrf_token ?? null);
    } catch {
      signedIn = null; // Anonymous (401), or the server cannot say: the reveal asks.
    }
  }
  const who =
    signedIn === null
      ? t("reveal.not_signed_in")
      : t("reveal.signed_in_as", { name: signedInName() });
  setText(note, t(signIn.require_mfa ? "reveal.signin_note_mfa" : "reveal.signin_note", { who }));
}

/** 401 with `login_url`: offer to sign in and come back here; nothing was used up. */
function showSignInNeeded(error) {
  loginUrl = error.loginUrl;
  for (const element of [keyForm, revealForm, byId("denied"), byId("gone")]) show(element, false);
  setText(status, "");
  setText(
    byId("signin-needed-text"),
    t(
      error.code === "fresh_login_required"
        ? "reveal.signin_fresh_text"
        : "reveal.signin_needed_text",
    ),
  );
  const section = byId("signin-needed");
  show(section, true);
  section.focus();
}

/** 403 recipient_mismatch or mfa_required: who is signed in, and why that is not enough. */
function showIdentityDenied(error) {
  const [title, text] = IDENTITY_REFUSALS[error.code];
  for (const element of [keyForm, revealForm, byId("gone"), byId("signin-needed")]) {
    show(element, false);
  }
  setText(status, "");
  setText(byId("denied-title"), t(title));
  setText(byId("denied-text"), t(text, { name: signedInName() }));
  const denied = byId("denied");
  show(denied, true);
  denied.focus();
}

/** Keep the key in this tab for the sign-in round trip, and go to sign in. */
function onSignIn() {
  if (loginUrl === null || linkKey === null) return;
  const target = new URL(loginUrl, location.href);
  if (target.origin !== location.origin) return; // The key is kept for this server only.
  try {
    sessionStorage.setItem(KEPT_KEY, b64urlEncode(linkKey));
  } catch {
    // Storage is off: the reader opens the link again after signing in.
  }
  location.assign(target.href);
}

/**
 * The key kept before a sign-in, if any, removed from storage at once (whatever happens next:
 * it was needed only to come back here). Never sent anywhere.
 */
function takeKeptKey() {
  try {
    const kept = sessionStorage.getItem(KEPT_KEY);
    sessionStorage.removeItem(KEPT_KEY);
    return kept ?? "";
  } catch {
    return "";
  }
}

function checkPassphraseParams(params) {
  if (params === null) return;
  const ok =
    params.kdf === KDF_PBKDF2 &&
    Number.isInteger(params.iterations) &&
    params.iterations >= MIN_ITERATIONS &&
    params.iterations <= MAX_ITERATIONS &&
    decodeSalt(params.salt) !== null;
  if (!ok) throw new RevealError(t("reveal.error_server_params"));
}

function decodeSalt(text) {
  try {
    return b64urlDecode(text, SALT_BYTES);
  } catch {
    return null;
  }
}

function attemptsText(count) {
  return t("attempts.left", { count });
}

async function check() {
  setText(status, t("reveal.checking"));
  show(byId("denied"), false);
  try {
    info = await api.secretInfo(secretId, await accessToken(linkKey));
    checkPassphraseParams(info.passphrase);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 404) return showGone();
    if (refusal(error)) return showDenied(error);
    return showProblem(error);
  }
  show(keyForm, false);
  setText(status, "");
  setText(
    byId("waiting-details"),
    t("reveal.waiting_views", {
      views_left: t("views.left", { count: info.views_left }),
      relative: formatRelative(info.expires_at),
      date: formatDate(info.expires_at),
    }),
  );
  const needsPassphrase = info.passphrase !== null;
  show(byId("passphrase-field"), needsPassphrase);
  if (needsPassphrase) {
    setText(
      byId("reveal-passphrase-hint"),
      t("reveal.passphrase_hint", { attempts: attemptsText(info.attempts_left) }),
    );
  }
  await showSignInNote(info.sign_in ?? null);
  const verification = info.verification ?? null;
  codeAsked = false;
  codeSentAt = null;
  show(codeField, false);
  show(byId("verification-note"), verification !== null);
  setText(
    byId("verification-note"),
    verification === null ? "" : t("reveal.verification_note", { hint: verification.hint }),
  );
  show(revealForm, true);
  (needsPassphrase ? passphraseInput : byId("reveal-button")).focus();
}

/** Show the code field after the server mailed a code (`resent`: on "Send a new code"). */
function showCodeStep(hint, resent) {
  codeAsked = true;
  codeSentAt = Date.now();
  show(byId("verification-note"), false);
  show(codeField, true);
  setText(byId("otp-hint"), t("reveal.code_hint", { hint }));
  setText(
    byId("code-status"),
    t(resent ? "reveal.code_resent" : "reveal.code_sent", { time: formatTime(codeSentAt) }),
  );
  otpInput.value = "";
  markRefused(otpInput, false);
  otpInput.focus();
}

/** The mailed code can no longer be used (used, expired or tried too often). */
/**
 * The code can no longer be used. Only a matched one (a right code with a wrong passphrase)
 * lets the server mail the next at once; after wrong tries or expiry it keeps its minute.
 */
function codeSpent(matched = false) {
  if (matched) codeSentAt = null;
  otpInput.value = "";
}

/**
 * Ask the server to mail a code: a consume without `otp` or passphrase proof, which it
 * answers with 401 verification_required and takes nothing.
 */
async function requestCode(resent) {
  setText(status, t("reveal.status_sending_code"));
  const keys = await deriveKeys(linkKey);
  let consumed;
  try {
    consumed = await api.consumeSecret(secretId, keys.accessToken, null, null, signedIn !== null);
  } catch (error) {
    setText(status, "");
    if (error instanceof api.ApiError && error.code === "verification_required") {
      return showCodeStep(error.hint ?? info.verification?.hint ?? "", resent);
    }
    if (error instanceof api.ApiError && error.code === "verification_failed") {
      // Asked for a code after the last one allowed was spent: the server locked the secret.
      return showGone(t("reveal.error_codes_spent"));
    }
    if (error instanceof api.ApiError && error.code === "passphrase_required") {
      // The server asks for no code after all: the passphrase alone opens it.
      info.verification = null;
      show(byId("verification-note"), false);
      passphraseInput.focus();
      throw new RevealError(t("reveal.error_passphrase_required"));
    }
    if (error instanceof api.ApiError && error.status === 404) return showGone();
    throw error;
  }
  // The server asked for no code after all, and this call took the view: show it.
  return openConsumed(consumed, keys, info.passphrase);
}

function wrongCode(error) {
  const left = error.attemptsLeft ?? 0;
  markRefused(otpInput, true);
  if (left > 0) {
    otpInput.select();
    otpInput.focus();
    throw new RevealError(t("reveal.error_wrong_code", { attempts: attemptsText(left) }));
  }
  codeSpent();
  byId("resend-code").focus();
  throw new RevealError(t("reveal.error_wrong_code_last"));
}

function showProblem(error) {
  if (error instanceof api.ApiError && error.status === 401 && error.loginUrl) {
    return showSignInNeeded(error);
  }
  if (error instanceof api.ApiError && Object.hasOwn(IDENTITY_REFUSALS, error.code)) {
    return showIdentityDenied(error);
  }
  let message;
  if (refusal(error)) {
    // Address refusals end the visit; going too fast only pauses an open form.
    if (error.code !== "rate_limited" || revealForm.hidden) return showDenied(error);
  }
  if (error instanceof RevealError) message = error.message;
  else if (error instanceof api.ApiError && error.code === "network")
    message = t("reveal.error_network");
  else if (error instanceof api.ApiError && error.code === "rate_limited")
    message = t("reveal.error_rate_limited", { relative: formatRetry(error.retryAfter) });
  else if (error instanceof api.ApiError && error.code === "mail_unavailable")
    message = t("reveal.error_mail");
  else if (error instanceof api.ApiError)
    message = t("reveal.error_other", { message: error.message });
  else message = t("reveal.error_other", { message: String(error?.message ?? error) });
  setText(status, "");
  if (revealForm.hidden) {
    setText(status, message);
  } else {
    setError(revealError, message);
  }
}

async function takeView() {
  const params = info.passphrase;
  const verifying = info.verification != null;
  if (verifying && !codeAsked) return requestCode(false);
  let otp = null;
  if (verifying) {
    otp = normaliseOtp(otpInput.value);
    if (otp === null) {
      markRefused(otpInput, true);
      otpInput.focus();
      throw new RevealError(t("reveal.error_code_format"));
    }
    markRefused(otpInput, false);
  }
  let keys;
  if (params !== null) {
    const passphrase = passphraseInput.value;
    if (passphrase === "") {
      markPassphrase(true);
      throw new RevealError(t("reveal.error_passphrase_required"));
    }
    setText(status, t("reveal.status_stretching"));
    keys = await deriveKeys(linkKey, {
      passphrase,
      salt: b64urlDecode(params.salt, SALT_BYTES),
      iterations: params.iterations,
    });
  } else {
    keys = await deriveKeys(linkKey);
  }
  let consumed;
  try {
    consumed = await api.consumeSecret(
      secretId,
      keys.accessToken,
      keys.passphraseProof,
      otp,
      signedIn !== null,
    );
  } catch (error) {
    setText(status, "");
    if (error instanceof api.ApiError && error.code === "verification_failed") {
      return wrongCode(error);
    }
    if (error instanceof api.ApiError && error.code === "verification_required") {
      codeSpent();
      byId("resend-code").focus();
      throw new RevealError(t("reveal.error_code_expired"));
    }
    if (error instanceof api.ApiError && error.code === "wrong_passphrase") {
      if (error.attemptsLeft === 0) return showGone(t("reveal.error_last_attempt"));
      info.attempts_left = error.attemptsLeft;
      setText(
        byId("reveal-passphrase-hint"),
        t("reveal.passphrase_hint", { attempts: attemptsText(error.attemptsLeft) }),
      );
      markPassphrase(true);
      passphraseInput.select();
      const attempts = attemptsText(error.attemptsLeft);
      // The code was right, and is used up: the next try needs a new one.
      if (verifying) codeSpent(true);
      throw new RevealError(
        t(verifying ? "reveal.error_wrong_passphrase_code" : "reveal.error_wrong_passphrase", {
          attempts,
        }),
      );
    }
    if (error instanceof api.ApiError && error.status === 404) return showGone();
    throw error;
  }
  return openConsumed(consumed, keys, params);
}

/** Check and decrypt the envelope of a view that was taken, and show the secret. */
async function openConsumed(consumed, keys, params) {
  setText(status, t("reveal.status_opening"));
  let payload;
  try {
    const envelope = parseEnvelope(consumed.envelope, { minIterations: MIN_ITERATIONS });
    const expectedKdf = params === null ? KDF_NONE : KDF_PBKDF2;
    if (
      envelope.kdf !== expectedKdf ||
      (params !== null && (envelope.iter !== params.iterations || envelope.salt !== params.salt))
    ) {
      throw new RevealError(t("reveal.error_server_params"));
    }
    payload = await openEnvelope(envelope, keys);
  } catch (error) {
    if (error instanceof EnvelopeError) throw new RevealError(t("reveal.error_decrypt"));
    throw error;
  }
  showSecret(payload, consumed.views_left);
}

function showSecret(payload, viewsLeft) {
  setText(status, "");
  show(revealForm, false);
  passphraseInput.value = "";
  otpInput.value = "";
  if (payload.type === "text") {
    const area = byId("secret-text");
    area.value = payload.text;
    area.rows = Math.min(MAX_TEXT_ROWS, Math.max(3, payload.text.split("\n").length));
    show(byId("revealed-text"), true);
  } else {
    revealedFile = payload;
    const name = safeFileName(payload.name ?? "");
    setText(
      byId("file-info"),
      t("reveal.file_info", {
        name: name ?? t("reveal.file_unnamed"),
        size: formatBytes(payload.content.length),
        mime: payload.mime ?? "application/octet-stream",
      }),
    );
    show(byId("revealed-file"), true);
  }
  setText(
    byId("revealed-notice"),
    viewsLeft === 0
      ? t(payload.type === "text" ? "reveal.destroyed" : "reveal.destroyed_file")
      : t("reveal.remaining", { views_left: t("views.left", { count: viewsLeft }) }),
  );
  const section = byId("revealed");
  show(section, true);
  section.focus();
  if (viewsLeft > 0) {
    // The key still opens the remaining views: keep it out of this tab's address bar and history.
    history.replaceState(null, "", location.pathname + location.search);
  }
  linkKey = null;
}

function download() {
  if (revealedFile === null) return;
  // Always octet-stream: a file is saved, never rendered (an SVG or HTML file could run script).
  const blob = new Blob([revealedFile.content], { type: "application/octet-stream" });
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = safeFileName(revealedFile.name ?? "") ?? DEFAULT_FILE_NAME;
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Each field's own descriptions (its hints), before any refusal was added to them.
const ownDescriptions = new Map();

/**
 * Mark a field (the passphrase or the code) as refused, tied to the form's error that says
 * why, or as no longer refused.
 */
function markRefused(input, refused) {
  if (!ownDescriptions.has(input)) {
    ownDescriptions.set(input, input.getAttribute("aria-describedby") ?? "");
  }
  const own = ownDescriptions.get(input);
  if (refused) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${revealError.id} ${own}`.trim());
  } else {
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", own);
  }
}

function markPassphrase(refused) {
  markRefused(passphraseInput, refused);
  if (refused) passphraseInput.focus();
}

async function onReveal(event) {
  event.preventDefault();
  // From here the page may hold the secret, and the link's key leaves the address bar.
  holdLanguage(t("language.held"));
  setError(revealError, "");
  markPassphrase(false);
  await whileBusy(byId("reveal-button"), revealForm, async () => {
    try {
      await takeView();
    } catch (error) {
      showProblem(error);
    }
  });
}

async function onResend() {
  setError(revealError, "");
  const wait = resendWait(codeSentAt);
  if (wait > 0) {
    // The server would mail nothing now: the last code is still on its way or in the inbox.
    setText(byId("code-status"), t("reveal.code_wait", { count: wait }));
    otpInput.focus();
    return;
  }
  await whileBusy(byId("resend-code"), revealForm, async () => {
    try {
      await requestCode(true);
    } catch (error) {
      showProblem(error);
    }
  });
}

async function onKey(event) {
  event.preventDefault();
  const key = decodeKey(byId("key").value);
  if (key === null) return askForKey(t("reveal.key_invalid"));
  setError(byId("key-error"), "");
  byId("key").setAttribute("aria-invalid", "false");
  show(byId("gone"), false);
  linkKey = key;
  keyWasTyped = true;
  await check();
}

function forget() {
  // Leaving the page (or putting it in the back/forward cache) drops the revealed secret.
  byId("secret-text").value = "";
  otpInput.value = "";
  revealedFile = null;
  linkKey = null;
}

async function main() {
  await loadMessages();
  setupCopyButtons();
  keyForm.addEventListener("submit", onKey);
  revealForm.addEventListener("submit", onReveal);
  byId("resend-code").addEventListener("click", onResend);
  byId("download").addEventListener("click", download);
  byId("reveal-sign-in").addEventListener("click", onSignIn);
  window.addEventListener("pagehide", forget);
  if (!globalThis.crypto?.subtle) {
    setText(status, t("reveal.error_crypto"));
    document.documentElement.dataset.ready = "true";
    return;
  }
  const kept = takeKeptKey();
  let fromLink = fragment();
  if (fromLink === "" && kept !== "") {
    // Back from signing in: the key kept for the round trip goes back in the address bar.
    fromLink = kept;
    history.replaceState(null, "", `${location.pathname}${location.search}#${kept}`);
  }
  if (fromLink === "") {
    askForKey();
  } else {
    linkKey = decodeKey(fromLink);
    if (linkKey === null) askForKey(t("reveal.key_invalid"));
    else await check();
  }
  document.documentElement.dataset.ready = "true";
}

main().catch(failed);
