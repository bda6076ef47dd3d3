// The receipt page (/m/{id}#token): the secret's state, times, views and events, refreshed
// while the page is open and the secret is active, and a burn button with confirmation. The
// manage token in the #fragment is sent only as a bearer token.

import * as api from "./api.js";
import "./language.js"; // the language picker
import { KEY_BYTES, b64urlDecode } from "./envelope.js";
import {
  formatCountry,
  formatDate,
  formatList,
  formatViewer,
  formatWhen,
  loadMessages,
  t,
  translated,
} from "./i18n.js";
import { announce, byId, failed, fragment, pageId, setText, show } from "./ui.js";

const REFRESH_SECONDS = 10;
const STATES = new Set(["active", "viewed", "burned", "locked", "expired"]);
// Agent classes that open links without a person asking (useragents.AUTOMATED).
const AUTOMATED = new Set(["preview", "scanner", "bot"]);

const secretId = pageId();
const status = byId("receipt-status");
const section = byId("receipt");
const dialog = byId("burn-dialog");
let token = null;
let timer = null;
let lastState = null;
let statementText = null;

function decodeToken(text) {
  try {
    return b64urlDecode(text, KEY_BYTES);
  } catch {
    return null;
  }
}

function showGone() {
  clearTimeout(timer);
  show(section, false);
  setText(status, "");
  const gone = byId("receipt-gone");
  show(gone, true);
  gone.focus();
}

/**
 * "Opened by Slackbot (link preview)", "Viewed by Firefox in Germany (DE)", and for a
 * signed-in recipient "Viewed by alice@example.com (MFA) with Firefox in Germany (DE)".
 */
function describeEvent(event) {
  let text = translated("event", event.type);
  const viewer = event.viewer && typeof event.viewer === "object" ? event.viewer : null;
  if (viewer !== null) {
    text = t("receipt.by_viewer", { event: text, viewer: formatViewer(viewer) });
  }
  const agent = event.agent;
  if (agent && typeof agent.name === "string" && agent.name !== "") {
    const values = { event: text, agent: agent.name, class: translated("agent", agent.class) };
    const how = viewer === null ? "by" : "with";
    const key = agent.class === "browser" ? `receipt.${how}_agent` : `receipt.${how}_agent_class`;
    text = t(key, values);
  }
  if (typeof event.country === "string" && event.country !== "") {
    text = t("receipt.in_country", { text, country: formatCountry(event.country) });
  }
  return text;
}

/** "Link opened 3 times (2 by Slackbot), viewed once." */
function summarize(receipt) {
  const opened = receipt.events.filter((event) => event.type === "opened");
  const robots = opened.filter((event) => AUTOMATED.has(event.agent?.class));
  // The receipt lists the first 200 opens; events_capped says when there were more.
  const capped = Array.isArray(receipt.events_capped) && receipt.events_capped.includes("opened");
  const key = capped ? "receipt.summary_opened_capped" : "receipt.summary_opened";
  let text = t(key, { count: opened.length });
  if (robots.length > 0) {
    const names = formatList([...new Set(robots.map((event) => event.agent.name))]);
    text = t("receipt.summary_automated", { opened: text, automated: robots.length, names });
  }
  const views = receipt.views_used;
  const viewed =
    views > 0 ? t("receipt.summary_viewed", { count: views }) : t("receipt.summary_not_viewed");
  return t("receipt.summary", { opened: text, viewed });
}

function eventRow(event) {
  const row = document.createElement("tr");
  const cells = [
    formatDate(event.at),
    describeEvent(event),
    event.ip ?? t("receipt.unknown"),
    event.user_agent ?? t("receipt.unknown"),
  ];
  for (const [index, text] of cells.entries()) {
    const cell = document.createElement(index === 0 ? "th" : "td");
    if (index === 0) cell.scope = "row";
    cell.textContent = text;
    // An address or a user agent is written left to right, even on a right-to-left page.
    if ((index === 2 && event.ip) || (index === 3 && event.user_agent)) cell.dir = "ltr";
    row.append(cell);
  }
  return row;
}

function render(receipt) {
  const state = STATES.has(receipt.state) ? receipt.state : "unknown";
  const badge = byId("receipt-state");
  badge.className = `badge state-${state}`;
  setText(badge, translated("state", receipt.state));
  setText(
    byId("receipt-views"),
    t("receipt.views_value", {
      used: receipt.views_used,
      left: receipt.views_left,
      max: receipt.max_views,
    }),
  );
  setText(byId("receipt-created"), formatWhen(receipt.created_at));
  setText(byId("receipt-expires"), formatWhen(receipt.expires_at));
  show(byId("receipt-ended-row"), receipt.ended_at !== null);
  if (receipt.ended_at !== null) setText(byId("receipt-ended"), formatWhen(receipt.ended_at));
  byId("events-body").replaceChildren(...receipt.events.map(eventRow));
  show(byId("no-events"), receipt.events.length === 0);
  setText(byId("receipt-summary"), summarize(receipt));
  renderProof(receipt.statement ?? null);
  show(byId("burn"), receipt.state === "active");
  const time = new Intl.DateTimeFormat(document.documentElement.lang, {
    timeStyle: "medium",
  }).format(new Date());
  const updated = receipt.state === "active" ? "receipt.updated" : "receipt.updated_final";
  setText(byId("receipt-updated"), t(updated, { time, seconds: REFRESH_SECONDS }));
  if (lastState !== null && lastState !== receipt.state) announce(translated("state", receipt.state));
  lastState = receipt.state;
  show(section, true);
}

/** The signed statement, shown as text and offered as a file, once the secret has ended. */
function renderProof(statement) {
  statementText =
    statement === null
      ? null
      : typeof statement === "string"
        ? statement
        : `${JSON.stringify(statement, null, 2)}\n`;
  show(byId("proof"), statementText !== null);
  setText(byId("proof-statement"), statementText ?? "");
}

function downloadStatement() {
  if (statementText === null) return;
  const blob = new Blob([statementText], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = `burnlink-${secretId}-statement.json`;
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  announce(t("receipt.proof_saved"));
}

async function load() {
  clearTimeout(timer);
  let receipt;
  try {
    receipt = await api.receipt(secretId, token);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 404) return showGone();
    setText(
      status,
      error.code === "network"
        ? t("receipt.error_network")
        : t("reveal.error_other", { message: error.message }),
    );
    schedule();
    return;
  }
  setText(status, "");
  render(receipt);
  if (receipt.state === "active") schedule();
}

function schedule() {
  clearTimeout(timer);
  if (document.visibilityState === "visible") timer = setTimeout(load, REFRESH_SECONDS * 1000);
}

async function burn() {
  try {
    await api.burnSecret(secretId, token);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 404) return showGone();
    setText(status, t("reveal.error_other", { message: error.message }));
    return;
  }
  // The status line says it, and keeps saying it: the reload below would otherwise clear it,
  // and announce the new state over it, within milliseconds (too soon to be read).
  lastState = null;
  await load();
  setText(status, t("receipt.burned_now"));
  byId("refresh").focus();
}

function onDialogClose() {
  if (dialog.returnValue === "burn") {
    burn();
  } else {
    byId("burn").focus();
  }
}

async function main() {
  await loadMessages();
  byId("refresh").addEventListener("click", load);
  byId("proof-download").addEventListener("click", downloadStatement);
  byId("burn").addEventListener("click", () => {
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", onDialogClose);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && lastState === "active") load();
    else clearTimeout(timer);
  });
  token = decodeToken(fragment());
  if (token === null) showGone();
  else {
    setText(status, t("receipt.loading"));
    await load();
  }
  document.documentElement.dataset.ready = "true";
}

main().catch(failed);
