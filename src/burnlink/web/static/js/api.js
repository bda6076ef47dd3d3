// The JSON API v1 (docs/api.md), as the pages use it. Requests carry tokens derived from the
// key, never the key, the passphrase or the plaintext; the API's base is found relative to this
// module, so a server under a path prefix works unchanged.

import { b64urlEncode } from "./envelope.js";

const API = new URL("../../api/v1/", import.meta.url);

/** An error answer (or no answer: `status` 0, `code` "network") from the API. */
export class ApiError extends Error {
  constructor(status, error, retryAfter = null) {
    super(error?.message ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error?.code ?? (status === 0 ? "network" : "http_error");
    this.attemptsLeft = error?.attempts_left ?? null;
    this.field = error?.field ?? null;
    this.limit = error?.limit ?? null;
    this.hint = error?.hint ?? null;
    this.retryAfter = error?.retry_after ?? retryAfter;
    this.loginUrl = error?.login_url ?? null;
    this.teams = Array.isArray(error?.teams) ? error.teams : [];
  }
}

// The signed-in session's CSRF token (from GET /api/v1/me), once the page knows it: the
// sender's own requests then carry the session cookie and this token (docs/identity.md).
let csrfToken = null;

/** Send the session cookie and `X-Burnlink-CSRF: token` with the sender's requests. */
export function useSession(token) {
  csrfToken = token;
}

async function call(method, path, { token = null, body, session = false } = {}) {
  // The page's language: the server mails a verification code in it (docs/web.md).
  const headers = { Accept: "application/json", "Accept-Language": document.documentElement.lang };
  if (token !== null) headers.Authorization = `Bearer ${b64urlEncode(token)}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // The cookie goes only with its CSRF token (or on a GET): a stale cookie sent without
  // it would be refused (403 csrf_failed), and without a known session the sender is anonymous.
  const withSession = session && (csrfToken !== null || method === "GET");
  if (withSession && csrfToken !== null && method !== "GET") {
    headers["X-Burnlink-CSRF"] = csrfToken;
  }
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Recipients' requests carry no cookie, except a signed-in recipient's reveal of a
      // secret bound to `recipients`; a signed-in sender's own requests do.
      credentials: withSession ? "same-origin" : "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const wait = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new ApiError(response.status, data?.error ?? null, Number.isNaN(wait) ? null : wait);
  }
  if (data === null || typeof data !== "object") throw new ApiError(response.status, null);
  return data;
}

/**
 * The server's limits and policy: `{min_ttl, max_ttl, default_ttl, max_views, max_bytes, …,
 * require_passphrase, allowed_countries, recipient_verification, notifications}`.
 */
export function policy({ session = false } = {}) {
  // With the session: the signed-in sender's own rules (their teams', docs/identity.md).
  return call("GET", "policy", { session });
}

/**
 * Store a sealed envelope; returns `{id, url, manage_url, expires_at, max_views}`. `rules` are
 * the access rules (docs/access.md), with the signed-in `recipients` and `requireMfa`; empty
 * ones are left out of the request. `label` is the
 * sender's own name for the secret (sent as typed; null: none).
 */
export function createSecret({
  envelope,
  accessToken,
  passphraseProof,
  ttl,
  maxViews,
  rules = {},
  label = null,
}) {
  const body = { envelope, access_token: b64urlEncode(accessToken), ttl, max_views: maxViews };
  if (label !== null) body.label = label;
  if (passphraseProof !== null) body.passphrase_proof = b64urlEncode(passphraseProof);
  if (rules.allowedIps?.length) body.allowed_ips = rules.allowedIps;
  if (rules.allowedCountries?.length) body.allowed_countries = rules.allowedCountries;
  if (rules.deniedCountries?.length) body.denied_countries = rules.deniedCountries;
  if (rules.recipientEmail) body.recipient_email = rules.recipientEmail;
  if (rules.notifyUrl) body.notify_url = rules.notifyUrl;
  // require_mfa only with recipients: the API refuses it alone.
  if (rules.recipients?.length) {
    body.recipients = rules.recipients;
    body.require_mfa = rules.requireMfa === true;
  }
  return call("POST", "secrets", { body, session: true });
}

/**
 * Who is signed in: `{subject, email, groups, mfa, auth_time, csrf_token, via}`; an ApiError
 * 401 `login_required` when no one is (404 when the server has no sign-in).
 */
export function me() {
  return call("GET", "me", { session: true });
}

/** End the session; returns where to go next (the provider's sign-out, or home). */
export async function signOut() {
  const headers = { Accept: "application/json" };
  if (csrfToken !== null) headers["X-Burnlink-CSRF"] = csrfToken;
  let response;
  try {
    response = await fetch(new URL("../../auth/logout", API), {
      method: "POST",
      headers,
      credentials: "same-origin",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error ?? null);
  return data?.logout_url ?? new URL("../../", API).href;
}

/** A live secret's metadata for the holder of the link; consumes nothing. */
export function secretInfo(id, accessToken) {
  return call("GET", `secrets/${encodeURIComponent(id)}`, { token: accessToken });
}

/**
 * Take one view; returns `{envelope, views_left}`. For a secret that names a recipient, a call
 * without `otp` has a code mailed (401 `verification_required`) and takes nothing. `session`:
 * send the session cookie and its CSRF token (a secret bound to signed-in `recipients`).
 */
export function consumeSecret(id, accessToken, passphraseProof, otp = null, session = false) {
  const body = passphraseProof === null ? {} : { passphrase_proof: b64urlEncode(passphraseProof) };
  if (otp !== null) body.otp = otp;
  return call("POST", `secrets/${encodeURIComponent(id)}/consume`, {
    token: accessToken,
    body,
    session,
  });
}

/** The sender's receipt (manage token as bearer). */
export function receipt(id, manageToken) {
  return call("GET", `secrets/${encodeURIComponent(id)}/receipt`, { token: manageToken });
}

/** Burn the secret now (manage token as bearer). */
export function burnSecret(id, manageToken) {
  return call("DELETE", `secrets/${encodeURIComponent(id)}`, { token: manageToken });
}

/** The signed-in user's secrets, newest first: `{secrets: [{id, label, state, …}]}`. */
export function mySecrets() {
  return call("GET", "me/secrets", { session: true });
}

/** The receipt of one of the signed-in user's secrets. */
export function myReceipt(id) {
  return call("GET", `me/secrets/${encodeURIComponent(id)}`, { session: true });
}

/** Burn one of the signed-in user's secrets. */
export function burnMine(id) {
  return call("DELETE", `me/secrets/${encodeURIComponent(id)}`, { session: true });
}

/** Burn several of the signed-in user's secrets: `{burned, not_found}`. */
export function burnManyMine(ids) {
  return call("POST", "me/secrets/burn", { body: { ids }, session: true });
}

/** The signed-in user's API tokens: `{tokens: [{id, name, scopes, …, state}]}`. */
export function myTokens() {
  return call("GET", "me/tokens", { session: true });
}

/** Make an API token; the answer's `token` is shown once and never again. */
export function createToken(name, scopes, expiresInDays) {
  const body = { name, scopes, expires_in_days: expiresInDays };
  return call("POST", "me/tokens", { body, session: true });
}

/** Revoke one of the signed-in user's API tokens. */
export function revokeToken(id) {
  return call("DELETE", `me/tokens/${encodeURIComponent(id)}`, { session: true });
}

// -- the admin console (docs/admin.md): a session of an administrator with a fresh second factor

/** Who the console acts as: `{via, subject, email, signed_in_at, fresh_until}`. */
export function adminSession() {
  return call("GET", "admin/session", { session: true });
}

/** `URLSearchParams` of the non-empty entries of `params` (arrays repeat the name). */
function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== null && item !== undefined && item !== "") search.append(name, String(item));
    }
  }
  return search.toString();
}

/** Activity per bucket: `{since, until, bucket, buckets: [{start, created, viewed, …}]}`. */
export function adminActivity(params) {
  return call("GET", `admin/activity?${query(params)}`, { session: true });
}

/** A page of matching audit entries, oldest first: `{entries, next_after}`. */
export function auditPage(params) {
  return call("GET", `audit?${query(params)}`, { session: true });
}

/** Every matching audit entry as a file (`format`: csv or jsonl): `{blob, filename}`. */
export async function auditExport(params, format) {
  let response;
  try {
    response = await fetch(new URL(`admin/audit/export?${query({ ...params, format })}`, API), {
      headers: { Accept: "text/csv, application/jsonl, application/json" },
      credentials: "same-origin",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new ApiError(response.status, data?.error ?? null);
  }
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `audit.${format}`;
  return { blob: await response.blob(), filename };
}

/** Every user's API tokens: `{tokens: [{id, subject, email, name, scopes, …, state}]}`. */
export function adminTokens() {
  return call("GET", "admin/tokens", { session: true });
}

/** Revoke anyone's API token (an administrator's action, with the session's CSRF token). */
export function adminRevokeToken(id) {
  return call("DELETE", `admin/tokens/${encodeURIComponent(id)}`, { session: true });
}

/** The policy in force: `{source, sections: {name: {setting: value}}}`. */
export function adminPolicy() {
  return call("GET", "admin/policy", { session: true });
}

// -- Requests for a secret (docs/api.md § Requests for a secret) ---------------------------

/** Ask for a secret: `{id, url, requester_url, link_token, requester_token, expires_at, …}`. */
export function createRequest({ publicKey, description, ttl, answerViews, recipients = [] }) {
  const body = { public_key: b64urlEncode(publicKey), description, ttl, answer_views: answerViews };
  if (recipients.length) body.recipients = recipients;
  return call("POST", "requests", { body, session: true });
}

/** The request for the answering side (the request link's token). */
export function viewRequest(requestId, linkToken) {
  // With the session cookie: a request for signed-in recipients asks who answers.
  return call("GET", `requests/${encodeURIComponent(requestId)}`, {
    token: linkToken,
    session: true,
  });
}

/** The one answer, sealed to the requester's key: `{secret_id, manage_url, …}`. */
export function answerRequest(requestId, linkToken, sealed) {
  return call("POST", `requests/${encodeURIComponent(requestId)}/answer`, {
    token: linkToken,
    body: { answer: sealed },
    session: true,
  });
}

/** The request for its requester; `wait` seconds of long poll (0: at once). */
export function requestStatus(requestId, requesterToken, wait = 0) {
  return call("GET", `requests/${encodeURIComponent(requestId)}/status?wait=${wait}`, {
    token: requesterToken,
  });
}

/** Take one view of the answer: `{answer: sealed answer, views_left}`. */
export function openRequestAnswer(requestId, requesterToken) {
  return call("POST", `requests/${encodeURIComponent(requestId)}/open`, {
    token: requesterToken,
  });
}
