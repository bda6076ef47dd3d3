// The requester's own page (/k/{id}#token.private key): waits for the answer with a long poll
// (the server holds each request up to WAIT seconds; no hard polling), then opens it once,
// here, with the private key of the page's address. Neither the key nor the answer is sent.

import * as api from "./api.js";
import { b64urlDecode, KEY_BYTES, safeFileName } from "./envelope.js";
import { formatWhen, loadMessages, t } from "./i18n.js";
import {
  KEY_PAIR_BYTES,
  constantTimeEqual,
  importKeyPair,
  openAnswer,
  parsePublicKey,
} from "./request_seal.js";
import {
  announce,
  byId,
  failed,
  fragment,
  pageId,
  setText,
  setupCopyButtons,
  show,
  whileBusy,
} from "./ui.js";

const WAIT = 25;
const RETRY_MS = 3000;
const requestId = pageId();
const status = byId("own-status");
let token = null;
let keyPair = null;
let file = null;

function parseLink() {
  const [first, second] = fragment().split(".");
  try {
    return [b64urlDecode(first ?? "", KEY_BYTES), b64urlDecode(second ?? "", KEY_PAIR_BYTES)];
  } catch {
    return null;
  }
}

function gone(key) {
  show(byId("own-request"), false);
  setText(status, "");
  setText(byId("own-gone-text"), t(key));
  const box = byId("own-gone");
  show(box, true);
  box.focus();
}

/** Whether the page's private key is the request's (a wrong link must use up no view). */
async function ours(state) {
  try {
    const pair = await importKeyPair(keyPair);
    return constantTimeEqual(pair.publicKey, parsePublicKey(state.public_key, "public_key"));
  } catch {
    return false;
  }
}

function render(state) {
  setText(byId("own-description"), state.description);
  setText(byId("own-expires"), formatWhen(state.expires_at));
  setText(byId("own-state"), t(`own.state_${state.state}`));
  byId("own-state").dataset.state = state.state;
  show(byId("own-request"), true);
  const openable = state.state === "answered" && state.answer !== null;
  show(byId("open-answer"), openable);
  if (state.state === "open") setText(status, t("own.waiting"));
  else if (openable) setText(status, t("own.answered"));
}

async function watch() {
  // The first look answers at once, so the page shows the request; then each look waits.
  for (let wait = 0; ; wait = WAIT) {
    let state;
    try {
      state = await api.requestStatus(requestId, token, wait);
    } catch (error) {
      if (error.status === 404) return gone("own.gone_missing");
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      continue;
    }
    if (!(await ours(state))) return gone("own.wrong_key");
    render(state);
    if (state.state === "expired") return gone("own.gone_expired");
    if (state.state === "answered") {
      if (state.answer === null) return gone("own.gone_used");
      announce(t("own.answered"));
      return;
    }
  }
}

function download() {
  const blob = new Blob([file.content], { type: "application/octet-stream" });
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = safeFileName(file.name ?? "") ?? "answer";
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function open() {
  await whileBusy(byId("open-answer"), byId("own-request"), async () => {
    setText(status, t("own.opening"));
    let opened;
    try {
      opened = await api.openRequestAnswer(requestId, token);
    } catch (error) {
      if (error.status === 404 || error.status === 410) return gone("own.gone_used");
      setText(status, error.message);
      return;
    }
    let payload;
    try {
      payload = await openAnswer(opened.answer, keyPair, requestId);
    } catch {
      setText(status, t("own.bad_answer"));
      return;
    }
    show(byId("open-answer"), false);
    setText(status, "");
    const box = byId("own-answer");
    if (payload.type === "text") {
      byId("own-answer-text").value = payload.text;
      show(byId("own-answer-text"), true);
      show(byId("own-copy"), true);
    } else {
      file = payload;
      show(byId("own-download"), true);
    }
    setText(
      byId("own-views-left"),
      opened.views_left > 0
        ? t("own.views_left", { count: opened.views_left })
        : t("own.no_views_left"),
    );
    show(box, true);
    box.focus();
  });
}

async function start() {
  await loadMessages();
  setupCopyButtons();
  const parsed = parseLink();
  if (parsed === null) {
    gone("own.gone_missing");
    document.documentElement.dataset.ready = "true";
    return;
  }
  [token, keyPair] = parsed;
  byId("open-answer").addEventListener("click", open);
  byId("own-download").addEventListener("click", download);
  setText(status, t("own.loading"));
  document.documentElement.dataset.ready = "true";
  await watch();
}

start().catch(failed);
