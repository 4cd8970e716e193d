// End-to-end tests of Portcullis' login and account pages in a real headless browser:
// Debian's chromium driven by playwright-core (no browser download). Started by the Rust test
// crates/portcullis/tests/it/e2e.rs, which runs the server and the fake identity providers and
// passes their addresses in the environment. Prints one JSON line per case; exits 1 if any failed.
//
// Environment: PORTCULLIS_URL (the server), E2E_SHOTS (screenshot directory), E2E_REDIRECT (the
// OIDC client's redirect URI, answered here by request interception), ALICE_PASSWORD,
// CHROMIUM (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.PORTCULLIS_URL;
const SHOTS = process.env.E2E_SHOTS;
const REDIRECT = process.env.E2E_REDIRECT;
const ALICE_PASSWORD = process.env.ALICE_PASSWORD;
assert.ok(BASE && SHOTS && REDIRECT && ALICE_PASSWORD, 'PORTCULLIS_URL, E2E_SHOTS, E2E_REDIRECT and ALICE_PASSWORD are required');
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
let failed = 0;

async function newPage(locale = 'en-US', viewport = { width: 1100, height: 760 }) {
  const context = await browser.newContext({ locale, viewport, javaScriptEnabled: false });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function run(name, fn) {
  try {
    await fn();
    console.log(JSON.stringify({ case: name, ok: true }));
  } catch (e) {
    failed++;
    console.log(JSON.stringify({ case: name, ok: false, error: String(e && e.stack || e) }));
  }
}

async function signIn(page, user, password) {
  await page.goto(`${BASE}/login`);
  await page.getByLabel('User name or email').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

// The sign-in page in English and, through the language switch, in Simplified Chinese.
await run('sign-in page (en, zh-CN)', async () => {
  const page = await newPage();
  const resp = await page.goto(`${BASE}/login`);
  assert.equal(resp.status(), 200);
  const csp = resp.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'; style-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(resp.headers()['x-frame-options'], 'DENY');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await page.getByRole('heading', { name: 'Sign in to Portcullis' }).waitFor();
  const buttons = await page.locator('.providers a').allTextContents();
  assert.deepEqual(buttons, ['Log In with GitHub', 'Log In with Corp SSO', 'Log In with Broken IdP'], 'config order, hidden left out');
  // The stylesheet applied (same origin, allowed by the CSP): the button has the primary colour.
  const bg = await page.getByRole('button', { name: 'Log in' }).evaluate(e => getComputedStyle(e).backgroundColor);
  assert.equal(bg, 'rgb(29, 78, 216)');
  await shot(page, 'sign-in-en');
  await page.getByRole('link', { name: '简体中文' }).click();
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  await page.getByRole('heading', { name: '登录 Portcullis' }).waitFor();
  await page.getByLabel('用户名或邮箱').waitFor();
  assert.ok((await page.locator('.providers a').first().textContent()).includes('通过 GitHub 登录'));
  await shot(page, 'sign-in-zh-CN');
  // The choice is remembered by a cookie.
  await page.goto(`${BASE}/login`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  // Accept-Language alone picks Chinese too.
  const zh = await newPage('zh-CN');
  await zh.goto(`${BASE}/login`);
  assert.equal(await zh.locator('html').getAttribute('lang'), 'zh-CN');
  // On a phone the form fits the screen.
  const phone = await newPage('en-US', { width: 375, height: 740 });
  await phone.goto(`${BASE}/login`);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `no horizontal scrolling on a phone (${width}px)`);
  await shot(phone, 'sign-in-phone');
});

// Password login: a wrong password is said clearly, the right one lands on the account page.
const alice = await newPage();
await run('password login', async () => {
  await signIn(alice, 'alice', 'wrong-password');
  await alice.getByRole('alert').filter({ hasText: 'Incorrect user name or password.' }).waitFor();
  assert.equal(await alice.getByLabel('User name or email').inputValue(), 'alice', 'the name is kept');
  await shot(alice, 'sign-in-error');
  await alice.getByLabel('Password', { exact: true }).fill(ALICE_PASSWORD);
  await alice.getByRole('button', { name: 'Log in' }).click();
  await alice.waitForURL(`${BASE}/account`);
  await alice.getByRole('heading', { name: 'Signed in as alice' }).waitFor();
  // Keyboard: the first Tab reaches the skip link, which is then visible with a focus outline.
  await alice.keyboard.press('Tab');
  const focused = await alice.evaluate(() => document.activeElement.textContent);
  assert.equal(focused, 'Skip to content');
  const outline = await alice.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, 'solid');
});

// Link another provider from the account page, then unlink it.
await run('link and unlink an identity', async () => {
  await alice.goto(`${BASE}/account`);
  await alice.getByRole('link', { name: 'Link GitHub' }).click();
  await alice.waitForURL(`${BASE}/account?done=linked`);
  await alice.getByRole('status').filter({ hasText: 'The identity was linked to your account.' }).waitFor();
  const row = alice.locator('section', { hasText: 'Linked identities' }).locator('tbody tr');
  assert.equal(await row.count(), 1);
  assert.ok((await row.first().textContent()).includes('octocat'));
  await shot(alice, 'account');
  await alice.getByRole('button', { name: 'Unlink GitHub account octocat' }).click();
  await alice.waitForURL(`${BASE}/account?done=unlinked`);
  await alice.getByText('No identity provider is linked to this account.').waitFor();
});

// Login through the provider test server: the GitHub user is created (mappingMethod: auto).
await run('provider login', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/login`);
  await page.getByRole('link', { name: 'Log In with GitHub' }).click();
  await page.waitForURL(`${BASE}/account`);
  await page.getByRole('heading', { name: 'Signed in as octocat' }).waitFor();
  const history = page.locator('section', { hasText: 'Recent logins' });
  assert.ok((await history.textContent()).includes('GitHub'));
  await shot(page, 'provider-login');
});

// The confirm step of mappingMethod: manual, with server-side validation.
await run('confirm account', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/login`);
  await page.getByRole('link', { name: 'Log In with Corp SSO' }).click();
  await page.waitForURL(`${BASE}/login/confirm`);
  assert.equal(await page.getByLabel('User name').inputValue(), 'monalisa');
  assert.equal(await page.getByLabel('Email').inputValue(), 'mona@corp.example');
  await shot(page, 'confirm');
  await page.getByLabel('User name').fill('Mona Lisa');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('alert').filter({ hasText: 'may only contain lower-case letters' }).waitFor();
  assert.equal(await page.getByLabel('User name').inputValue(), 'Mona Lisa', 'the input is kept');
  await page.getByLabel('User name').fill('admin');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('alert').filter({ hasText: 'is already taken' }).waitFor();
  await page.getByLabel('User name').fill('mona');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${BASE}/account`);
  await page.getByRole('heading', { name: 'Signed in as mona' }).waitFor();
});

// Revoking a session: a second browser signs in as alice and ends the first one's session.
await run('revoke a session', async () => {
  const second = await newPage();
  await signIn(second, 'alice', ALICE_PASSWORD);
  await second.waitForURL(`${BASE}/account`);
  const rows = second.locator('section', { hasText: 'Active sessions' }).locator('tbody tr');
  assert.ok((await rows.count()) >= 2, 'both sessions are listed');
  assert.equal(await rows.filter({ hasText: 'This browser' }).count(), 1);
  await shot(second, 'sessions');
  while ((await rows.count()) > 1) {
    const other = rows.filter({ hasNotText: 'This browser' }).first();
    await other.getByRole('button', { name: /^Revoke the session/ }).click();
    await second.waitForURL(`${BASE}/account?done=session_revoked`);
  }
  // The first browser is signed out.
  await alice.goto(`${BASE}/account`);
  assert.ok(alice.url().startsWith(`${BASE}/login?`), `sent to the sign-in page: ${alice.url()}`);
  // The second one still works, and signs out.
  await second.goto(`${BASE}/account`);
  await second.getByRole('button', { name: 'Sign out', exact: true }).click();
  await second.getByRole('status').filter({ hasText: 'You have signed out.' }).waitFor();
});

// Consent for a client with grantMethod: prompt.
await run('consent', async () => {
  const page = await newPage();
  await page.route(`${REDIRECT}**`, route => route.fulfill({ status: 200, contentType: 'text/plain', body: 'client' }));
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({
    client_id: 'consent', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid profile email',
    state: 'st-e2e', nonce: 'n-e2e', code_challenge: challenge, code_challenge_method: 'S256',
  });
  await page.goto(`${BASE}/oauth/authorize?${q}`);
  assert.ok(page.url().startsWith(`${BASE}/oauth/login?`), page.url());
  await page.getByLabel('User name or email').fill('alice');
  await page.getByLabel('Password', { exact: true }).fill(ALICE_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
  await page.getByText('See your email address').waitFor();
  await shot(page, 'consent');
  // Allow ends at the client's redirect URI with a code and the state.
  const [request] = await Promise.all([
    page.waitForRequest(r => r.url().startsWith(REDIRECT)),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  const back = new URL(request.url());
  assert.equal(back.searchParams.get('state'), 'st-e2e');
  assert.ok(back.searchParams.get('code'), request.url());
});

// The error page of a failed provider: what went wrong, what to do, and the request id.
await run('provider error page', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/login`);
  await page.getByRole('link', { name: 'Log In with Broken IdP' }).click();
  await page.getByRole('heading', { name: 'Login failed' }).waitFor();
  await page.getByText('The identity provider did not answer correctly').waitFor();
  await page.getByText('What to do').waitFor();
  const id = (await page.locator('code').textContent()).trim();
  assert.ok(id.length > 4, 'a request id');
  console.log(JSON.stringify({ request_id: id }));
  await page.getByRole('link', { name: 'Back to the sign-in page' }).waitFor();
  await shot(page, 'error');
});

await browser.close();
process.exit(failed ? 1 : 0);
