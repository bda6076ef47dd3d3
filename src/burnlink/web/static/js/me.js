// "My secrets" (/me, only when the server has sign-in): the signed-in user's secrets (label,
// state, views, expiry, last event), their receipts, burning one or many, and personal API
// tokens (made, shown once, revoked). Every change carries the session's CSRF token
// (X-Burnlink-CSRF, from GET /api/v1/me). Labels are the user's own text: they reach the page
// through textContent only.

import * as api from "./api.js";
import "./language.js"; // the language picker
import {
  formatDate,
  formatRelative,
  formatViewer,
  formatWhen,
  loadMessages,
  t,
  translated,
} from "./i18n.js";
import {
  addCell,
  announce,
  byId,
  failed,
  setError,
  setText,
  setupCopyButtons,
  show,
  whileBusy,
} from "./ui.js";

const MAX_DAYS = 365;
const MAX_NAME_CHARS = 64;

const status = byId("me-status");
const errorBox = byId("me-error");
const dialog = byId("me-burn-dialog");
const tokenForm = byId("token-form");
const tokenError = byId("token-form-error");

function labelOf(secret) {
  return secret.label ?? secret.id;
}


function button(text, name, className = "secondary") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.setAttribute("aria-label", name);
  return element;
}

/** Send the user to sign in again when the API asks for it; true when it did. */
function signInAgain(error) {
  if (error instanceof api.ApiError && error.status === 401 && error.loginUrl) {
    setText(status, t("me.fresh_login"));
    location.assign(error.loginUrl);
    return true;
  }
  return false;
}

function reportFailure(error) {
  if (signInAgain(error)) return;
  setError(errorBox, t("me.error_action", { message: error?.message ?? String(error) }));
}

/** Ask before burning; resolves true when the user confirmed. */
function confirmBurn(text) {
  setText(byId("me-burn-text"), text);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "burn"), {
      once: true,
    });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function burn(ids, text) {
  setError(errorBox, "");
  if (!(await confirmBurn(text))) return;
  try {
    if (ids.length === 1) {
      await api.burnMine(ids[0]);
    } else {
      await api.burnManyMine(ids);
    }
    announce(t("me.burned", { count: ids.length }));
  } catch (error) {
    reportFailure(error);
  }
  await loadSecrets();
}

async function openReceipt(secret) {
  setError(errorBox, "");
  let receipt;
  try {
    receipt = await api.myReceipt(secret.id);
  } catch (error) {
    reportFailure(error);
    return;
  }
  const panel = byId("my-receipt");
  setText(byId("my-receipt-label"), labelOf(secret));
  setText(byId("my-receipt-state"), translated("state", receipt.state));
  setText(
    byId("my-receipt-views"),
    t("me.views_value", { used: receipt.views_used, left: receipt.views_left }),
  );
  setText(byId("my-receipt-created"), formatWhen(receipt.created_at));
  setText(byId("my-receipt-expires"), formatWhen(receipt.expires_at));
  const list = byId("my-receipt-events");
  list.replaceChildren();
  for (const event of receipt.events ?? []) {
    const item = document.createElement("li");
    let text = translated("event", event.type);
    if (event.viewer && typeof event.viewer === "object") {
      text = t("receipt.by_viewer", { event: text, viewer: formatViewer(event.viewer) });
    }
    item.textContent = `${formatDate(event.at)}: ${text}`;
    list.append(item);
  }
  show(panel, true);
  panel.focus();
}

function secretRow(secret) {
  const row = document.createElement("tr");
  row.dataset.id = secret.id;
  row.dataset.state = secret.state;
  const label = labelOf(secret);
  const pick = document.createElement("input");
  pick.type = "checkbox";
  pick.value = secret.id;
  pick.disabled = secret.state !== "active";
  pick.setAttribute("aria-label", t("me.select_one", { label }));
  addCell(row, "").append(pick);
  const name = document.createElement("th");
  name.scope = "row";
  name.className = "secret-label";
  name.textContent = label;
  row.append(name);
  addCell(row, translated("state", secret.state), t("me.state")).className = "secret-state";
  addCell(
    row,
    t("me.views_value", { used: secret.views_used, left: secret.views_left }),
    t("me.views"),
  );
  addCell(row, formatWhen(secret.expires_at), t("me.expires"));
  addCell(
    row,
    secret.last_event === null
      ? ""
      : t("me.last_event_value", {
          event: translated("event", secret.last_event),
          when: formatRelative(secret.last_event_at),
        }),
    t("me.last_event"),
  );
  const actions = addCell(row, "");
  const open = button(t("me.receipt"), t("me.receipt_of", { label }));
  open.classList.add("receipt");
  open.addEventListener("click", () => openReceipt(secret));
  actions.append(open);
  if (secret.state === "active") {
    const burnButton = button(t("me.burn"), t("me.burn_of", { label }), "danger burn");
    burnButton.addEventListener("click", () =>
      burn([secret.id], t("me.burn_one_text", { label })),
    );
    actions.append(" ", burnButton);
  }
  return row;
}

async function loadSecrets() {
  setText(status, t("me.loading"));
  let listing;
  try {
    listing = await api.mySecrets();
  } catch (error) {
    if (!signInAgain(error)) setError(errorBox, t("me.error_load"));
    setText(status, "");
    return;
  }
  byId("secrets-body").replaceChildren(...listing.secrets.map(secretRow));
  show(byId("no-secrets"), listing.secrets.length === 0);
  setText(status, t("me.loaded", { count: listing.secrets.length }));
}

function tokenRow(token) {
  const row = document.createElement("tr");
  row.dataset.id = token.id;
  row.dataset.state = token.state;
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = token.name;
  row.append(name);
  addCell(row, token.scopes.join(", "), t("me.token_scopes"));
  addCell(row, formatDate(token.created_at), t("me.token_created"));
  addCell(row, formatDate(token.expires_at), t("me.token_expires"));
  addCell(
    row,
    token.last_used === null ? t("me.token_never") : formatWhen(token.last_used),
    t("me.token_last_used"),
  );
  addCell(row, translated("token_state", token.state), t("me.token_state")).className =
    "token-state";
  const actions = addCell(row, "");
  if (token.state === "active") {
    const revoke = button(t("me.token_revoke"), t("me.token_revoke_of", { name: token.name }));
    revoke.classList.add("revoke");
    revoke.addEventListener("click", async () => {
      setError(errorBox, "");
      try {
        await api.revokeToken(token.id);
        announce(t("me.token_revoked"));
      } catch (error) {
        reportFailure(error);
      }
      await loadTokens();
    });
    actions.append(revoke);
  }
  return row;
}

async function loadTokens() {
  let listing;
  try {
    listing = await api.myTokens();
  } catch (error) {
    reportFailure(error);
    return;
  }
  byId("tokens-body").replaceChildren(...listing.tokens.map(tokenRow));
  show(byId("no-tokens"), listing.tokens.length === 0);
}

// The token form's fields, kept in this tab while the user signs in again for a fresh sign-in
// (name, scopes and days only: nothing secret), and put back when /me opens again.
const TOKEN_DRAFT = "burnlink.me.token-draft";

function keepTokenDraft(input) {
  try {
    sessionStorage.setItem(TOKEN_DRAFT, JSON.stringify(input));
  } catch {
    // Storage may be off (private mode): the user types the name again.
  }
}

function restoreTokenDraft() {
  let draft = null;
  try {
    draft = JSON.parse(sessionStorage.getItem(TOKEN_DRAFT) ?? "null");
    sessionStorage.removeItem(TOKEN_DRAFT);
  } catch {
    return;
  }
  if (draft === null || typeof draft.name !== "string" || !Array.isArray(draft.scopes)) return;
  byId("token-name").value = draft.name.slice(0, MAX_NAME_CHARS);
  for (const box of tokenForm.querySelectorAll("input[name=scope]")) {
    box.checked = draft.scopes.includes(box.value);
  }
  if (Number.isInteger(draft.days)) byId("token-days").value = String(draft.days);
  show(byId("token-draft-note"), true);
  byId("token-create").focus();
}

function tokenInput() {
  const name = byId("token-name").value.trim();
  const scopes = [...tokenForm.querySelectorAll("input[name=scope]:checked")].map((c) => c.value);
  const days = Number(byId("token-days").value);
  if (name === "" || name.length > MAX_NAME_CHARS) return [null, "me.error_token_name"];
  if (scopes.length === 0) return [null, "me.error_token_scopes"];
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) return [null, "me.error_token_days"];
  return [{ name, scopes, days }, null];
}

async function onCreateToken(event) {
  event.preventDefault();
  const [input, problem] = tokenInput();
  setError(tokenError, problem === null ? "" : t(problem));
  if (input === null) return;
  await whileBusy(byId("token-create"), tokenForm, async () => {
    try {
      const made = await api.createToken(input.name, input.scopes, input.days);
      byId("token-value").value = made.token;
      const shown = byId("token-made");
      show(shown, true);
      shown.focus();
      tokenForm.reset();
      show(byId("token-draft-note"), false);
    } catch (error) {
      if (error instanceof api.ApiError && error.status === 401 && error.loginUrl) {
        keepTokenDraft(input);
      }
      if (!signInAgain(error)) {
        setError(tokenError, t("me.error_action", { message: error.message }));
      }
    }
  });
  await loadTokens();
}

async function main() {
  await loadMessages();
  let user = null;
  try {
    user = await api.me();
  } catch {
    user = null; // Anonymous (401), or the server cannot say.
  }
  if (user === null) {
    show(byId("me-anonymous"), true);
    document.documentElement.dataset.ready = "true";
    return;
  }
  api.useSession(user.csrf_token);
  setText(byId("me-who"), t("me.signed_in_as", { name: user.email ?? user.subject }));
  show(byId("my-secrets"), true);
  show(byId("my-tokens"), true);
  setupCopyButtons();
  byId("me-refresh").addEventListener("click", () => loadSecrets());
  byId("my-receipt-close").addEventListener("click", () => show(byId("my-receipt"), false));
  byId("burn-selected").addEventListener("click", () => {
    const ids = [...byId("secrets-body").querySelectorAll("input:checked")].map((c) => c.value);
    if (ids.length === 0) {
      setError(errorBox, t("me.burn_none"));
      return;
    }
    burn(ids, t("me.burn_many_text", { count: ids.length }));
  });
  tokenForm.addEventListener("submit", onCreateToken);
  restoreTokenDraft();
  await Promise.all([loadSecrets(), loadTokens()]);
  document.documentElement.dataset.ready = "true";
}

main().catch(failed);
