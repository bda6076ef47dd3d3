// The "Request a secret" page (/request): makes a P-256 key pair here, creates the request,
// and shows the two links: the request link to send (#fingerprint.token) and the requester's
// own link (#token.private key), which is the only place the private key goes.

import * as api from "./api.js";
import { b64urlEncode } from "./envelope.js";
import { loadMessages, t } from "./i18n.js";
import { fingerprint, generateKeyPair } from "./request_seal.js";
import { byId, failed, setError, setText, setupCopyButtons, show, whileBusy } from "./ui.js";

const form = byId("request-form");
const status = byId("request-status");

/** The page's links are built on the API's answer, whose `url` has no fragment. */
function withFragment(url, ...parts) {
  return `${url.split("#")[0]}#${parts.join(".")}`;
}

async function create(event) {
  event.preventDefault();
  const description = byId("description").value.trim();
  setError(byId("description-error"), description ? "" : t("request.description_missing"));
  const views = Number(byId("views").value);
  const maxViews = Number(byId("views").max);
  const viewsOk = Number.isInteger(views) && views >= 1 && views <= maxViews;
  setError(byId("views-error"), viewsOk ? "" : t("request.views_invalid", { max: maxViews }));
  if (!description || !viewsOk) return;
  setError(byId("request-error"), "");
  await whileBusy(byId("create-request"), form, async () => {
    setText(status, t("request.creating"));
    try {
      const keys = await generateKeyPair();
      const made = await api.createRequest({
        publicKey: keys.publicKey,
        description,
        ttl: Number(byId("ttl").value),
        answerViews: views,
        recipients: (byId("recipients")?.value ?? "").split(/[\s,]+/).filter(Boolean),
      });
      const print = b64urlEncode(await fingerprint(keys.publicKey));
      const link = withFragment(made.url, print, made.link_token);
      const own = withFragment(made.requester_url, made.requester_token, b64urlEncode(keys.privateKey));
      byId("request-link").value = link;
      byId("own-link").value = own;
      byId("open-own").href = own;
      show(form, false);
      const done = byId("request-made");
      show(done, true);
      done.focus();
      setText(status, t("request.made"));
    } catch (error) {
      setText(status, "");
      setError(byId("request-error"), error?.message ?? String(error));
    }
  });
}

async function start() {
  await loadMessages();
  setupCopyButtons();
  form.addEventListener("submit", create);
  document.documentElement.dataset.ready = "true";
}

start().catch(failed);
