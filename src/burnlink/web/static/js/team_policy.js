// The rules of a signed-in sender's teams on the compose page (docs/identity.md § Teams).
// GET /api/v1/policy, asked with the session cookie, answers the sender's effective policy:
// the server's tightened by their teams. This shows those rules before anything is typed and
// holds the form to them: the expiry choices past the teams' longest are disabled, the views
// stop at their most, a required passphrase or recipients are marked so, and a sender whose
// teams may not create cannot press Create. The server enforces all of it anyway.

import { formatCountry, formatList, t } from "./i18n.js";
import { byId, setText, show } from "./ui.js";

const UNITS = [
  ["days", 86400],
  ["hours", 3600],
  ["minutes", 60],
];

/** `seconds` in the largest whole unit, as the server's own expiry choices are named. */
export function durationText(seconds) {
  for (const [unit, size] of UNITS) {
    if (seconds % size === 0) return t(`duration.${unit}`, { count: seconds / size });
  }
  return t("duration.seconds", { count: seconds });
}

/** The rules `policy` says the sender's teams set, as sentences naming the teams. */
export function teamRules(policy) {
  const imposed = policy?.imposed_by ?? {};
  const teams = (rule) => formatList(imposed[rule] ?? []);
  const rules = [];
  if (imposed.ttl) {
    const duration = durationText(policy.max_ttl);
    rules.push(t("team.rule_ttl", { duration, teams: teams("ttl") }));
  }
  if (imposed.max_views) {
    rules.push(t("team.rule_views", { count: policy.max_views, teams: teams("max_views") }));
  }
  if (imposed.passphrase) rules.push(t("team.rule_passphrase", { teams: teams("passphrase") }));
  if (policy?.recipients_inside) {
    rules.push(
      t("team.rule_recipients_inside", {
        domains: formatList(policy.organisation_domains ?? []),
        teams: teams("recipients"),
      }),
    );
  } else if (policy?.recipients_required) {
    rules.push(t("team.rule_recipients", { teams: teams("recipients") }));
  }
  if (policy?.recipients_require_mfa) {
    rules.push(t("team.rule_mfa", { teams: teams("require_mfa") }));
  }
  if (Array.isArray(policy?.team_countries)) {
    rules.push(
      t("team.rule_countries", {
        countries: formatList(policy.team_countries.map(formatCountry)),
        teams: teams("allowed_countries"),
      }),
    );
  }
  return rules;
}

/** Disable the expiry choices past `max` and pick `preferred` if the choice was one of them. */
function limitTtl(max, preferred) {
  const select = byId("ttl");
  let kept = false;
  for (const option of select.options) {
    const over = Number(option.value) > max;
    option.disabled = over;
    option.hidden = over;
    if (Number(option.value) === max) kept = true;
  }
  if (!kept) {
    // The teams' longest is not among the server's choices: offer it.
    const option = new Option(durationText(max), String(max));
    const after = [...select.options].find((o) => Number(o.value) > max) ?? null;
    select.add(option, after);
  }
  if (Number(select.value) > max || select.selectedOptions[0]?.disabled) {
    const fallback = [...select.options].find((o) => Number(o.value) === preferred);
    select.value = String(fallback ? preferred : max);
  }
}

/**
 * Show the rules of the sender's teams (`policy` from GET /api/v1/policy with the session)
 * and hold the form to them; nothing when the page has no place for them (no sign-in).
 */
export function applyTeamPolicy(policy) {
  const box = byId("team-policy");
  if (box === null || policy === null) return;
  const teams = Array.isArray(policy.teams) ? policy.teams : [];
  const mayCreate = policy.may_create !== false;
  const rules = teamRules(policy);
  const list = byId("team-policy-list");
  list.replaceChildren(
    ...rules.map((rule) => {
      const item = document.createElement("li");
      item.textContent = rule;
      return item;
    }),
  );
  setText(byId("team-policy-title"), t("team.title", { teams: formatList(teams) }));
  show(box, teams.length > 0 && (rules.length > 0 || !mayCreate));
  const refusal = byId("team-policy-refusal");
  setText(refusal, mayCreate ? "" : t("team.refusal", { message: policy.refusal ?? "" }));
  show(refusal, !mayCreate);
  byId("create").disabled = !mayCreate;

  if (Number.isInteger(policy.max_ttl)) limitTtl(policy.max_ttl, policy.default_ttl);
  const views = byId("views");
  views.max = String(policy.max_views);
  if (Number(views.value) > policy.max_views) views.value = String(policy.max_views);
  setText(byId("views-hint"), t("compose.views_hint", { max: policy.max_views }));

  if (policy.imposed_by?.passphrase) {
    setText(byId("passphrase-label"), t("compose.passphrase_required_team"));
  }

  const recipients = byId("recipients");
  if (recipients !== null) {
    const required = policy.recipients_required === true;
    recipients.required = required;
    setText(
      byId("recipients-label"),
      t(required ? "compose.recipients_required" : "compose.recipients"),
    );
    if (required) byId("more-options").open = true;
  }
}
