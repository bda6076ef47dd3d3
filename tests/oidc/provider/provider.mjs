// A real OpenID Connect provider for burnlink's sign-in tests: the certified `oidc-provider`
// package, configured by tests/oidc_provider.py through one JSON document (the environment
// variable OIDC_PROVIDER_CONFIG, or the first argument). It listens on http://HOST:PORT/ and
// logs only to stderr; it stops on SIGTERM, SIGINT, the end of its stdin or the end of the
// process `watch_pid` names (optional: a pytest-xdist run's main process). Everything it holds
// (sessions, grants, codes) lives in memory and is gone when it stops.
//
// What it adds to the package: a small sign-in form in place of the development interactions
// (user and password, and a one-time code from the user's TOTP secret for users who have one),
// consent granted without asking (both clients are first-party), and plain pages that fetch
// nothing from elsewhere (the package's own pages load a web font).
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const MAX_FORM_BYTES = 8192;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function loadConfig() {
  const text = process.env.OIDC_PROVIDER_CONFIG || process.argv[2];
  if (!text) {
    throw new Error('provider.mjs: pass the JSON configuration in OIDC_PROVIDER_CONFIG');
  }
  const config = JSON.parse(text);
  for (const field of ['host', 'port', 'clients', 'users', 'jwks', 'cookie_keys']) {
    if (config[field] === undefined) {
      throw new Error(`provider.mjs: the configuration has no "${field}"`);
    }
  }
  return config;
}

const config = loadConfig();
const issuer = `http://${config.host}:${config.port}`;
const users = new Map(config.users.map((user) => [user.id, user]));

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto}label{display:block;margin:.5rem 0}input{display:block;width:100%}.error{color:#b00020}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>`;
}

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error('bad base32');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// RFC 6238 with its defaults (HMAC-SHA1, 30-second steps, 6 digits), as authenticator apps do.
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = crypto.createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const number = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 1_000_000).padStart(6, '0');
}

function sameText(a, b) {
  const left = crypto.createHash('sha256').update(String(a)).digest();
  const right = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(left, right);
}

function otpMatches(secret, given) {
  if (!/^[0-9]{6}$/.test(given)) return false;
  const step = Math.floor(Date.now() / 1000 / 30);
  // One step either side, for a code typed as its window closes.
  return [step - 1, step, step + 1].some((s) => sameText(totp(secret, s), given));
}

async function readForm(ctx) {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    ctx.throw(415, 'expected a form');
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) ctx.throw(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, details, { user = '', error = '' } = {}) {
  const client = details.params.client_id;
  const message = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return page(
    'Sign in to the test provider',
    `<p>Signing in for <strong>${escapeHtml(client)}</strong>.</p>
${message}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>User <input name="user" autocomplete="username" value="${escapeHtml(user)}" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>One-time code (users with a second factor) <input name="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"></label>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit">Cancel</button>
</form>`,
  );
}

// Checks a submitted sign-in; returns [user, null] or [null, what to tell the person].
function checkSignIn(form) {
  const user = users.get(form.get('user') || '');
  const password = form.get('password') || '';
  if (!user || !sameText(user.password, password)) {
    return [null, 'Wrong user or password.'];
  }
  if (user.totp_secret) {
    const otp = (form.get('otp') || '').trim();
    if (!otp) return [null, 'This user has a second factor: enter the one-time code.'];
    if (!otpMatches(user.totp_secret, otp)) return [null, 'Wrong one-time code.'];
  }
  return [user, null];
}

async function interactions(ctx, next) {
  const match = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login|\/abort)?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, action] = match;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Sign-in failed', `<p class="error">${escapeHtml(error.message)}</p>`);
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.throw(400, 'this sign-in belongs to another interaction');
  }
  if (!action && ctx.method === 'GET') {
    if (details.prompt.name === 'consent') {
      // First-party clients: what loadExistingGrant did not grant yet is granted here.
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { consent: await grantFor(details) }));
      return undefined;
    }
    ctx.type = 'html';
    ctx.body = loginPage(uid, details, { user: details.params.login_hint || '' });
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  if (action === '/abort') {
    const result = { error: 'access_denied', error_description: 'the user cancelled the sign-in' };
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
    return undefined;
  }
  const form = await readForm(ctx);
  const [user, error] = checkSignIn(form);
  if (!user) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginPage(uid, details, { user: form.get('user') || '', error });
    return undefined;
  }
  const login = { accountId: user.id, amr: user.amr, remember: true };
  if (user.acr) login.acr = user.acr;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login }, { mergeWithLastSubmission: false }));
  return undefined;
}

async function grantFor(details) {
  const { Grant } = provider;
  const grant = details.grantId
    ? await Grant.find(details.grantId)
    : new Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope || 'openid');
  return { grantId: await grant.save() };
}

// Both clients are the test's own: every scope they ask for is granted without a consent page.
async function loadExistingGrant(ctx) {
  const { client, session } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== session.accountId) {
    grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
  }
  grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' ') || 'openid');
  await grant.save();
  return grant;
}

async function findAccount(ctx, sub) {
  const user = users.get(sub);
  if (!user) return undefined;
  return {
    accountId: user.id,
    async claims() {
      return {
        sub: user.id,
        name: user.name,
        email: user.email,
        email_verified: user.email_verified,
        groups: user.groups,
      };
    },
  };
}

function clientOf(entry) {
  return {
    client_id: entry.client_id,
    client_secret: entry.client_secret,
    client_name: entry.client_name || entry.client_id,
    redirect_uris: entry.redirect_uris,
    post_logout_redirect_uris: entry.post_logout_redirect_uris || [],
    grant_types: ['authorization_code', DEVICE_CODE_GRANT],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

const ttl = {
  AccessToken: () => 600,
  AuthorizationCode: () => 60,
  BackchannelAuthenticationRequest: () => 600,
  ClientCredentials: () => 600,
  DeviceCode: () => config.device_code_ttl ?? 600,
  Grant: () => 3600,
  IdToken: () => config.id_token_ttl ?? 300,
  Interaction: () => 600,
  PreAuthorizedCode: () => 600,
  RefreshToken: () => 3600,
  Session: () => 3600,
};

const provider = new Provider(issuer, {
  acrValues: config.acr_values || [],
  // acr, amr and auth_time go with the openid scope: in every ID token, as burnlink's
  // MFA check expects of the providers it documents, not only when the claims parameter asks.
  claims: {
    sid: null,
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  clientBasedCORS: () => false,
  clients: config.clients.map(clientOf),
  // The claims of the scopes asked for go into the ID token too, as most providers do, so a
  // relying party can read email and groups without calling userinfo.
  conformIdTokenClaims: false,
  cookies: {
    keys: config.cookie_keys,
    // Not the package's names: the provider shares the host 127.0.0.1 (and so its cookies)
    // with the burnlink server under test.
    names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_resume' },
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, out, err) {
        const message = err ? '<p class="error" role="alert">That code is not valid: try again.</p>' : '';
        ctx.body = page(
          'Connect a device',
          `${message}<p>Enter the code your device shows.</p>
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`,
        );
      },
      async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page(
          'Confirm the device',
          `<p><strong>${escapeHtml(client.clientName || client.clientId)}</strong> asks to sign in.
The device should show <code>${escapeHtml(userCode)}</code>.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Allow</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Deny</button>`,
        );
      },
      async successSource(ctx) {
        ctx.body = page('Device signed in', '<p>You can close this page and go back to your device.</p>');
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page(
          'Sign out',
          `<p>Sign out of the test provider?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`,
        );
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>You are signed out of the test provider.</p>');
      },
    },
    userinfo: { enabled: true },
  },
  findAccount,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  jwks: config.jwks,
  loadExistingGrant,
  pkce: { required: () => true },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const lines = Object.entries(out)
      .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
      .join('\n');
    ctx.body = page('Sign-in error', lines);
  },
  responseTypes: ['code'],
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  ttl,
});

// RFC 8628's polling rules, which the package leaves out: with `device_interval` the device
// authorization answer names that polling interval, and with `device_min_poll` a device code
// polled again sooner than that many seconds after its last poll is answered `slow_down`
// (§3.5). Each poll is logged with its gap, never with the code.
const lastPoll = new Map();
async function devicePolling(ctx, next) {
  if (ctx.method !== 'POST') return next();
  if (ctx.path === '/device/auth' && Number.isInteger(config.device_interval)) {
    await next();
    if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, interval: config.device_interval };
    }
    return undefined;
  }
  if (ctx.path !== '/token' || !Number.isFinite(config.device_min_poll)) return next();
  // The form is read here, so the package takes it from req.body (its documented fallback).
  const form = await readForm(ctx);
  ctx.req.body = Object.fromEntries(form);
  if (form.get('grant_type') !== DEVICE_CODE_GRANT) return next();
  const code = form.get('device_code') || '';
  const now = Date.now();
  const last = lastPoll.get(code);
  lastPoll.set(code, now);
  const gap = last === undefined ? null : now - last;
  const slow = gap !== null && gap < config.device_min_poll * 1000;
  process.stderr.write(`provider.mjs: device poll gap_ms=${gap ?? 'first'} ${slow ? 'slow_down' : 'passed'}\n`);
  if (!slow) return next();
  ctx.status = 400;
  ctx.set('cache-control', 'no-store');
  ctx.body = { error: 'slow_down', error_description: 'polling too often: add 5 seconds to the interval' };
  return undefined;
}

provider.use(devicePolling);
provider.use(interactions);

const server = http.createServer(provider.callback());
server.listen(config.port, config.host, () => {
  process.stderr.write(`provider.mjs: listening at ${issuer}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The test holds our stdin open: when it ends (the test process died without stopping us),
// so do we, instead of listening on as an orphan.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
// Under pytest-xdist the test process is a worker, which a killed run leaves running until its
// test ends: the run's main process (watch_pid) is watched too, and its end stops us.
const WATCH_MS = 250;
if (Number.isInteger(config.watch_pid) && config.watch_pid > 1) {
  setInterval(() => {
    try {
      process.kill(config.watch_pid, 0);
    } catch (error) {
      if (error.code === 'ESRCH') stop();
    }
  }, WATCH_MS).unref();
}
