// A relying party built on openid-client (panva, OpenID-certified), driven against Portcullis by
// crates/portcullis/tests/it/oidc/interop.rs. The library does every protocol step (discovery,
// PKCE, state, nonce, code exchange, ID-token validation, userinfo, refresh, introspection,
// revocation, end-session URL); this script only plays the browser: it follows redirects and
// keeps cookies, and fills in Portcullis' login form.
//
// Input (environment): ISSUER, CLIENT_ID, CLIENT_SECRET (empty: public client), AUTH
// (basic | post | none), REDIRECT_URI, POST_LOGOUT_URI, ALG (RS256 | ES256), USERNAME, PASSWORD.
// Output: one JSON object on stdout with what each step saw; exit status 1 on the first failure.

import * as client from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};

const report = { steps: [] };
const step = (name, data = {}) => report.steps.push({ name, ...data });

// The browser: a cookie jar (name -> value) and manual redirects.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(';');
    const i = pair.indexOf('=');
    const [k, v] = [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
    const gone = v === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
    if (gone) jar.delete(k);
    else jar.set(k, v);
  }
  return res;
}

const field = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} field in the page`);
  return m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
};

// Follows the authorization request through the login form to the client's redirect URI.
async function loginAndGetCallback(authUrl) {
  let res = await browse(authUrl);
  let location = res.headers.get('location');
  if (res.status === 302 && location && new URL(location).pathname.endsWith('/oauth/login')) {
    const page = await (await browse(location)).text();
    const form = new URLSearchParams({
      csrf_token: field(page, 'csrf_token'),
      return_to: field(page, 'return_to'),
      username: env('USERNAME'),
      password: env('PASSWORD'),
    });
    res = await browse(new URL('/oauth/login', location), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    if (res.status !== 303) throw new Error(`login answered ${res.status}: ${await res.text()}`);
    res = await browse(res.headers.get('location'));
    location = res.headers.get('location');
  }
  if (res.status !== 302 || !location?.startsWith(env('REDIRECT_URI'))) {
    throw new Error(`authorization ended with ${res.status} ${location} ${await res.text()}`);
  }
  return new URL(location);
}

async function main() {
  const secret = process.env.CLIENT_SECRET || '';
  const auth = { basic: client.ClientSecretBasic, post: client.ClientSecretPost }[env('AUTH')];
  const clientAuth = auth ? auth(secret) : client.None();
  const alg = env('ALG');
  const config = await client.discovery(
    new URL(env('ISSUER')),
    env('CLIENT_ID'),
    { id_token_signed_response_alg: alg },
    clientAuth,
    { execute: [client.allowInsecureRequests] },
  );
  const meta = config.serverMetadata();
  step('discovery', { issuer: meta.issuer, pkce: meta.code_challenge_methods_supported });

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: env('REDIRECT_URI'),
    scope: 'openid profile email groups offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await loginAndGetCallback(authUrl);
  step('authorize', { iss: callback.searchParams.get('iss'), state_ok: callback.searchParams.get('state') === state });

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url'));
  step('token', { sub: claims.sub, nonce_ok: claims.nonce === nonce, alg: header.alg, scope: tokens.scope, has_refresh: !!tokens.refresh_token, claims });

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  step('userinfo', { info });

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const rclaims = refreshed.claims();
  step('refresh', { sub: rclaims.sub, auth_time_kept: rclaims.auth_time === claims.auth_time, rotated: refreshed.refresh_token !== tokens.refresh_token });

  const reuse = await client.refreshTokenGrant(config, tokens.refresh_token).then(
    () => 'accepted',
    (e) => e.error || e.code || String(e),
  );
  step('refresh_reuse', { result: reuse });

  // The reuse revoked that session (not the browser's): a second authorization needs no login
  // form (single sign-on) and gives live tokens for introspection and revocation.
  const v2 = client.randomPKCECodeVerifier();
  const s2 = client.randomState();
  const n2 = client.randomNonce();
  const again = await loginAndGetCallback(client.buildAuthorizationUrl(config, {
    redirect_uri: env('REDIRECT_URI'),
    scope: 'openid profile offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(v2),
    code_challenge_method: 'S256',
    state: s2,
    nonce: n2,
  }));
  const t2 = await client.authorizationCodeGrant(config, again, { pkceCodeVerifier: v2, expectedState: s2, expectedNonce: n2, idTokenExpected: true });
  step('second_login', { sso: true });

  if (secret) {
    const intro = await client.tokenIntrospection(config, t2.access_token);
    step('introspect', { active: intro.active, client_id: intro.client_id, scope: intro.scope, username: intro.username });
  }
  await client.tokenRevocation(config, t2.refresh_token);
  if (secret) {
    const after = await client.tokenIntrospection(config, t2.access_token);
    step('revoke', { active_after: after.active });
  } else {
    const after = await client.fetchUserInfo(config, t2.access_token, claims.sub).then(() => 'accepted', (e) => e.error || e.code || String(e));
    step('revoke', { userinfo_after: after });
  }

  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: t2.id_token,
    post_logout_redirect_uri: env('POST_LOGOUT_URI'),
    state: logoutState,
  });
  const out = await browse(endSession);
  const back = new URL(out.headers.get('location') || 'about:blank');
  step('logout', { status: out.status, to: back.origin + back.pathname, state_ok: back.searchParams.get('state') === logoutState, cookie_cleared: !jar.has('portcullis_session') });

  // After logout, prompt=none must fail with login_required, which the library reports.
  const v3 = client.randomPKCECodeVerifier();
  const s3 = client.randomState();
  const res = await browse(client.buildAuthorizationUrl(config, {
    redirect_uri: env('REDIRECT_URI'),
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(v3),
    code_challenge_method: 'S256',
    state: s3,
  }));
  const none = await client.authorizationCodeGrant(config, new URL(res.headers.get('location')), { pkceCodeVerifier: v3, expectedState: s3 }).then(
    () => 'accepted',
    (e) => e.error || e.code || String(e),
  );
  step('prompt_none_after_logout', { result: none });
}

main().then(
  () => {
    console.log(JSON.stringify(report));
  },
  (e) => {
    report.error = `${e.name}: ${e.message}${e.cause ? ` (${JSON.stringify(e.cause)})` : ''}`;
    console.log(JSON.stringify(report));
    process.exit(1);
  },
);
