// The answer page (/r/{id}#fingerprint.token): fetches the request with the link's token,
// checks the requester's public key against the link's fingerprint (a key the server swapped
// in is refused, and nothing is sent), then seals the secret here and submits it once.

import * as api from "./api.js";
import { b64urlDecode, KEY_BYTES } from "./envelope.js";
import { formatBytes, loadMessages, t } from "./i18n.js";
import {
  FINGERPRINT_BYTES,
  checkFingerprint,
  parsePublicKey,
  sealAnswer,
} from "./request_seal.js";
import { byId, failed, fragment, pageId, setError, setText, show, whileBusy } from "./ui.js";

const requestId = pageId();
const status = byId("answer-status");
const form = byId("answer-form");
let linkToken = null;
let expected = null;
let publicKey = null;
let maxBytes = 0;

function parseLink() {
  const [print, token] = fragment().split(".");
  try {
    return [b64urlDecode(print ?? "", FINGERPRINT_BYTES), b64urlDecode(token ?? "", KEY_BYTES)];
  } catch {
    return null;
  }
}

function closed(key) {
  show(form, false);
  setText(status, "");
  setText(byId("answer-closed-text"), t(key));
  const box = byId("answer-closed");
  show(box, true);
  box.focus();
}

function refuse() {
  show(form, false);
  setText(status, "");
  const box = byId("answer-refused");
  show(box, true);
  box.focus();
}

async function payloadOf() {
  const file = byId("answer-file").files?.[0] ?? null;
  if (file !== null) {
    const content = new Uint8Array(await file.arrayBuffer());
    return { type: "file", content, name: file.name || null, mime: file.type || null };
  }
  return { type: "text", content: new TextEncoder().encode(byId("answer-secret").value) };
}

async function send(event) {
  event.preventDefault();
  const payload = await payloadOf();
  if (payload.content.length === 0) {
    setError(byId("answer-secret-error"), t("answer.empty"));
    return;
  }
  if (payload.content.length > maxBytes) {
    setError(byId("answer-secret-error"), t("answer.too_large", { size: formatBytes(maxBytes) }));
    return;
  }
  setError(byId("answer-secret-error"), "");
  setError(byId("answer-error"), "");
  await whileBusy(byId("send-answer"), form, async () => {
    setText(status, t("answer.sending"));
    let sealed;
    try {
      sealed = await sealAnswer(payload, publicKey, requestId, { expectedFingerprint: expected });
    } catch {
      refuse(); // sealAnswer checks the fingerprint again: nothing is sent
      return;
    }
    try {
      const done = await api.answerRequest(requestId, linkToken, sealed);
      show(form, false);
      setText(status, "");
      byId("answer-secret").value = "";
      byId("answer-receipt").href = done.manage_url;
      const box = byId("answer-sent");
      show(box, true);
      box.focus();
    } catch (error) {
      setText(status, "");
      if (error.code === "already_answered") closed("answer.closed_answered");
      else if (error.code === "request_expired") closed("answer.closed_expired");
      else if (error.status === 404) closed("answer.closed_missing");
      else setError(byId("answer-error"), error.message);
    }
  });
}

async function start() {
  await loadMessages();
  const parsed = parseLink();
  if (parsed === null) {
    setText(status, t("answer.bad_link"));
    document.documentElement.dataset.ready = "true";
    return;
  }
  [expected, linkToken] = parsed;
  setText(status, t("answer.loading"));
  let shown;
  try {
    shown = await api.viewRequest(requestId, linkToken);
  } catch (error) {
    if (error.code === "login_required" || error.code === "recipient_mismatch") {
      // The sign-in's round trip loses this address's #fragment: open the link again after.
      setText(status, t(`answer.${error.code}`));
      show(byId("answer-sign-in"), error.code === "login_required");
      document.documentElement.dataset.ready = "true";
      return;
    }
    if (error.status !== 404) throw error;
    closed("answer.closed_missing");
    document.documentElement.dataset.ready = "true";
    return;
  }
  if (shown.recipients_only) {
    // A signed-in recipient's answer goes with the session and its CSRF token.
    api.useSession((await api.me()).csrf_token);
  }
  try {
    publicKey = parsePublicKey(shown.public_key, "public_key");
    await checkFingerprint(publicKey, expected);
  } catch {
    refuse();
    document.documentElement.dataset.ready = "true";
    return;
  }
  if (shown.state !== "open") {
    closed(shown.state === "answered" ? "answer.closed_answered" : "answer.closed_expired");
    document.documentElement.dataset.ready = "true";
    return;
  }
  maxBytes = shown.max_bytes;
  setText(byId("answer-description"), shown.description);
  setText(status, "");
  show(form, true);
  form.addEventListener("submit", send);
  document.documentElement.dataset.ready = "true";
}

start().catch(failed);
