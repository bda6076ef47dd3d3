// The admin console (/admin, only with BURNLINK_ADMIN_GROUPS): activity over time drawn as an
// SVG chart here (no library, nothing fetched from elsewhere), the live alert feed, audit
// search and export, every user's API tokens with revoke, and the policy in force. Every value
// from the server reaches the page through textContent or SVG attributes, never as markup.

import * as api from "./api.js";
import "./language.js"; // the language picker
import { formatDate, loadMessages, t, translated } from "./i18n.js";
import { addCell, announce, byId, failed, setError, setText, show, whileBusy } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const KINDS = ["created", "viewed", "expired", "burned", "denied", "alerts"];
// Colours with a dash pattern each, so the lines read without telling colours apart.
const STYLE = {
  created: ["#2563eb", null],
  viewed: ["#16a34a", null],
  expired: ["#6b7280", "6 3"],
  burned: ["#ea580c", "2 3"],
  denied: ["#dc2626", null],
  alerts: ["#7c3aed", "8 3 2 3"],
};
const PERIODS = {
  "48h": { hours: 48, bucket: "hour" },
  "30d": { hours: 30 * 24, bucket: "day" },
  "90d": { hours: 90 * 24, bucket: "day" },
};
const ALERT_POLL_MS = 15000;
const ALERTS_SHOWN = 20;

const status = byId("admin-status");
const errorBox = byId("admin-error");
let alertsAfter = 0;
let searchAfter = null;

function svg(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}


/** Sign in (again) when the API asks; show why not when refused. True when handled. */
function handleAccess(error) {
  if (error instanceof api.ApiError && error.status === 401 && error.loginUrl) {
    setText(status, t("admin.signing_in"));
    location.assign(error.loginUrl);
    return true;
  }
  if (error instanceof api.ApiError && error.status === 403) {
    show(byId("admin-console"), false);
    setText(byId("admin-refused-text"), error.message);
    show(byId("admin-refused"));
    return true;
  }
  return false;
}

function report(error) {
  if (!handleAccess(error)) setError(errorBox, t("admin.error", { message: error.message }));
}

// -- activity ------------------------------------------------------------------------------

function drawChart(buckets, bucket) {
  const box = byId("activity-chart");
  box.replaceChildren();
  const width = 760;
  const height = 260;
  const [top, left, bottom, right] = [12, 48, 36, 12];
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const most = Math.max(1, ...buckets.flatMap((b) => KINDS.map((k) => b[k])));
  const step = plotW / Math.max(1, buckets.length - 1);
  const x = (i) => left + (buckets.length > 1 ? i * step : plotW / 2);
  const y = (value) => top + plotH - (value * plotH) / most;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "activity",
    "aria-hidden": "true",
  });
  for (const value of new Set([0, 1, 2, 3, 4].map((k) => Math.round((most * k) / 4)))) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" });
    label.textContent = String(value);
    chart.append(label);
  }
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    if (i % every) return;
    const label = svg("text", { x: x(i), y: top + plotH + 18, "text-anchor": "middle" });
    const start = new Date(b.start);
    label.textContent =
      bucket === "hour"
        ? start.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
        : start.toLocaleDateString([], { month: "short", day: "numeric" });
    chart.append(label);
  });
  for (const kind of KINDS) {
    const [colour, dash] = STYLE[kind];
    const line = svg("polyline", {
      fill: "none",
      stroke: colour,
      "stroke-width": 2,
      "data-series": kind,
      points: buckets.map((b, i) => `${x(i).toFixed(1)},${y(b[kind]).toFixed(1)}`).join(" "),
    });
    if (dash) line.setAttribute("stroke-dasharray", dash);
    chart.append(line);
    if (buckets.length <= 62) {
      buckets.forEach((b, i) => {
        const dot = svg("circle", { cx: x(i), cy: y(b[kind]), r: 2.5, fill: colour });
        const title = svg("title");
        title.textContent = `${t(`admin.kind.${kind}`)}: ${b[kind]} (${formatDate(b.start)})`;
        dot.append(title);
        chart.append(dot);
      });
    }
  }
  box.append(chart);
}

function drawTotals(buckets) {
  const totals = byId("activity-totals");
  totals.replaceChildren();
  for (const kind of KINDS) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.kind = kind;
    const count = document.createElement("b");
    count.textContent = String(buckets.reduce((sum, b) => sum + b[kind], 0));
    const name = document.createElement("span");
    name.textContent = t(`admin.kind.${kind}`);
    tile.append(count, name);
    totals.append(tile);
  }
  const legend = byId("activity-legend");
  legend.replaceChildren();
  for (const kind of KINDS) {
    const [colour, dash] = STYLE[kind];
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.borderTopColor = colour;
    if (dash) swatch.style.borderTopStyle = "dashed";
    item.append(swatch, t(`admin.kind.${kind}`));
    legend.append(item);
  }
}

async function loadActivity() {
  const period = PERIODS[byId("activity-period").value] ?? PERIODS["30d"];
  const since = new Date(Date.now() - period.hours * 3600 * 1000).toISOString();
  const team = byId("activity-team").value;
  const answer = await api.adminActivity({ since, bucket: period.bucket, team });
  drawTotals(answer.buckets);
  drawChart(answer.buckets, answer.bucket);
}

// -- alerts --------------------------------------------------------------------------------

function alertLine(entry) {
  const event = entry.event;
  const item = document.createElement("li");
  const when = document.createElement("time");
  when.dateTime = event.at;
  when.textContent = formatDate(event.at);
  const what = document.createElement("span");
  const reason = event.detail?.reason ?? "";
  const where = event.client_ip ? ` · ${event.client_ip}` : "";
  what.textContent = ` ${translated("alert", reason)}${where}`;
  item.dataset.seq = String(entry.seq);
  item.append(when, what);
  return item;
}

async function pollAlerts(first = false) {
  const list = byId("alerts-list");
  const params = { type: "alert", limit: 200, after: alertsAfter };
  if (first) params.since = new Date(Date.now() - 7 * 86400 * 1000).toISOString();
  let page = await api.auditPage(params);
  const fresh = [...page.entries];
  while (page.next_after !== null && fresh.length < 1000) {
    page = await api.auditPage({ ...params, after: page.next_after });
    fresh.push(...page.entries);
  }
  for (const entry of fresh) {
    list.prepend(alertLine(entry));
    alertsAfter = Math.max(alertsAfter, entry.seq);
  }
  while (list.children.length > ALERTS_SHOWN) list.lastElementChild.remove();
  if (!first && fresh.length) announce(t("admin.new_alerts", { count: fresh.length }));
  show(byId("no-alerts"), list.children.length === 0);
  setText(byId("alerts-checked"), t("admin.alerts_checked", { time: formatDate(new Date()) }));
}

// -- search and export ---------------------------------------------------------------------

function localToIso(value) {
  return value ? new Date(value).toISOString() : "";
}

function filters() {
  const form = byId("search-form");
  const data = new FormData(form);
  return {
    since: localToIso(data.get("since")),
    until: localToIso(data.get("until")),
    type: data.get("type"),
    outcome: data.get("outcome"),
    actor: String(data.get("actor") ?? "").trim(),
    secret_id: String(data.get("secret_id") ?? "").trim(),
    client_ip: String(data.get("client_ip") ?? "").trim(),
    team: data.get("team"),
  };
}

function resultRow(entry) {
  const event = entry.event;
  const row = document.createElement("tr");
  addCell(row, String(entry.seq), "seq");
  addCell(row, formatDate(event.at), t("admin.at"));
  addCell(row, event.type, t("admin.type"));
  addCell(row, event.outcome, t("admin.outcome"));
  addCell(row, event.actor?.email ?? event.actor?.subject ?? "–", t("admin.actor"));
  addCell(row, event.client_ip ?? "–", t("admin.client_ip")).dir = "ltr";
  const secret = addCell(row, event.secret_hash ? `${event.secret_hash.slice(0, 12)}…` : "–", t("admin.secret"));
  if (event.secret_hash) secret.title = event.secret_hash;
  return row;
}

async function search(more = false) {
  const body = byId("results-body");
  const params = { ...filters(), limit: 100 };
  if (more && searchAfter !== null) params.after = searchAfter;
  const page = await api.auditPage(params);
  if (!more) body.replaceChildren();
  for (const entry of page.entries) body.append(resultRow(entry));
  searchAfter = page.next_after;
  show(byId("search-more"), searchAfter !== null);
  setText(byId("search-count"), t("admin.results", { count: body.children.length }));
}

async function exportAs(format) {
  const { blob, filename } = await api.auditExport(filters(), format);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  announce(t("admin.exported", { name: filename }));
}

// -- tokens and policy ---------------------------------------------------------------------

async function loadTokens() {
  const { tokens } = await api.adminTokens();
  const body = byId("admin-tokens-body");
  body.replaceChildren();
  for (const token of tokens) {
    const row = document.createElement("tr");
    row.dataset.token = token.id;
    addCell(row, token.email ?? token.subject, t("admin.user"));
    addCell(row, token.name, t("me.token_name"));
    addCell(row, token.scopes.join(", "), t("me.token_scopes"));
    addCell(row, formatDate(token.created_at), t("me.token_created"));
    addCell(row, formatDate(token.expires_at), t("me.token_expires"));
    addCell(row, token.last_used ? formatDate(token.last_used) : t("me.token_never"), t("me.token_last_used"));
    addCell(row, translated("token_state", token.state), t("me.token_state"));
    const actions = addCell(row, "", t("me.actions"));
    if (token.state === "active") {
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "danger";
      revoke.textContent = t("me.token_revoke");
      revoke.setAttribute("aria-label", t("admin.revoke_of", { name: token.name, user: token.email ?? token.subject }));
      revoke.addEventListener("click", () =>
        whileBusy(revoke, row, async () => {
          try {
            await api.adminRevokeToken(token.id);
            announce(t("me.token_revoked"));
            await loadTokens();
          } catch (error) {
            report(error);
          }
        }),
      );
      actions.append(revoke);
    }
    body.append(row);
  }
  show(byId("no-admin-tokens"), tokens.length === 0);
}

function policyValue(value) {
  if (Array.isArray(value)) return value.length ? value.join(", ") : t("admin.none");
  if (typeof value === "boolean") return value ? t("admin.yes") : t("admin.no");
  if (value !== null && typeof value === "object") {
    const rules = Object.entries(value).map(([name, rule]) => `${name}: ${policyValue(rule)}`);
    return rules.length ? rules.join("; ") : t("admin.none");
  }
  if (value === null || value === undefined || value === "") return t("admin.none");
  return String(value);
}

/** Offer the configured teams in both team selectors (the policy's `teams` section). */
function offerTeams(teams) {
  for (const id of ["activity-team", "search-team"]) {
    const select = byId(id);
    for (const name of Object.keys(teams ?? {})) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      select.append(option);
    }
    show(select.closest(".field"), select.options.length > 1);
  }
}

async function loadPolicy() {
  const { sections } = await api.adminPolicy();
  offerTeams(sections.teams);
  const box = byId("policy-sections");
  box.replaceChildren();
  for (const [section, settings] of Object.entries(sections)) {
    const heading = document.createElement("h3");
    heading.textContent = translated("admin.policy", section);
    const list = document.createElement("dl");
    list.className = "facts";
    list.dataset.section = section;
    for (const [name, value] of Object.entries(settings)) {
      const row = document.createElement("div");
      const term = document.createElement("dt");
      term.textContent = name;
      const detail = document.createElement("dd");
      detail.textContent = policyValue(value);
      row.append(term, detail);
      list.append(row);
    }
    box.append(heading, list);
  }
}

// -- start ---------------------------------------------------------------------------------

async function start() {
  await loadMessages();
  setText(status, t("admin.loading"));
  let who;
  try {
    who = await api.adminSession();
    const me = await api.me();
    api.useSession(me.csrf_token);
  } catch (error) {
    setText(status, "");
    report(error);
    document.documentElement.dataset.ready = "true";
    return;
  }
  setText(
    byId("admin-who"),
    t("admin.who", { name: who.email ?? who.subject, until: formatDate(who.fresh_until) }),
  );
  show(byId("admin-console"));
  byId("activity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadActivity().catch(report);
  });
  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setError(byId("search-error"), "");
    search().catch((error) => {
      if (error instanceof api.ApiError && error.status === 422) {
        setError(byId("search-error"), error.message);
      } else {
        report(error);
      }
    });
  });
  byId("search-more").addEventListener("click", () => search(true).catch(report));
  for (const format of ["csv", "jsonl"]) {
    byId(`export-${format}`).addEventListener("click", (event) => {
      event.preventDefault();
      exportAs(format).catch(report);
    });
  }
  await Promise.all([loadActivity(), pollAlerts(true), search(), loadTokens(), loadPolicy()]).catch(
    report,
  );
  setText(status, "");
  document.documentElement.dataset.ready = "true";
  setInterval(() => pollAlerts().catch(report), ALERT_POLL_MS);
}

start().catch(failed);
