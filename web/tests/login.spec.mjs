// login.spec.mjs — browser tests of signing in, against a real collector with [[tokens]] whose
// agents ship with ingest tokens into two tenants: team-a (cluster `alpha`, the fixture worker
// log, tailed at AFTERGLOW_TAIL_FILE) and team-b (cluster `beta`, a log holding the line
// "teambonlysecret …"). Run by the Rust test `ui::login_page_in_chromium_with_tokens_and_tenants`,
// which passes the tokens by name in AFTERGLOW_TOKENS (JSON). Every test fails on uncaught
// page errors; each new page is a new browser context (its own sessionStorage).
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { baseUrl, openBrowser, screenshot, watchPage } from './browser.mjs';

const tokens = JSON.parse(process.env.AFTERGLOW_TOKENS ?? '{}');
const tailFile = process.env.AFTERGLOW_TAIL_FILE;
const TEAM_B_LINE = 'teambonlysecret';
let browser;
let page;
let pageErrors;

before(async () => {
  assert.ok(tokens['team-a-readers'], 'AFTERGLOW_TOKENS must hold the tokens by name');
  ({ browser, page, pageErrors } = await openBrowser());
});

afterEach(() => {
  assert.deepEqual(pageErrors.map(String), [], 'the page raised errors');
});

after(async () => {
  await browser?.close();
});

/** A page of its own (a new browser context: nothing stored), failing the test on page errors. */
async function freshPage(options = {}) {
  const other = await browser.newPage({ viewport: { width: 1280, height: 800 }, ...options });
  await watchPage(other, pageErrors);
  return other;
}

/** Waits until the search view shows the answer to its last search. */
async function settled(on = page) {
  await on.waitForFunction(() => document.querySelector('#status')?.textContent === ''
    && document.querySelector('#results')?.getAttribute('aria-busy') === 'false');
}

async function signIn(on, token) {
  await on.waitForSelector('#login-token');
  await on.fill('#login-token', token);
  await on.click('#login-submit');
}

/** The collector's own answer, with `token`. */
async function apiGet(path, token) {
  const response = await fetch(`${baseUrl}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: await response.json() };
}

const drawn = (attribute, on = page) =>
  on.$$eval('#results .hit', (hits, name) => hits.map((hit) => hit.dataset[name]), attribute);

/** Everything the page keeps in web storage, as text. */
const storage = (on, which) => on.evaluate((name) => JSON.stringify({ ...window[name] }), which);

test('the UI without a token shows the login page, not a broken search', async () => {
  assert.equal((await apiGet('/api/v1/logs/search?q=*')).status, 401, 'the API asks for a token');
  await page.goto(baseUrl);
  await page.waitForSelector('#login-token');
  assert.equal(await page.getAttribute('#login-token', 'type'), 'password');
  assert.equal(await page.locator('#results').count(), 0, 'no search view behind the login page');
  assert.equal(await page.isVisible('#login-error'), false, 'no token is not an error');
  assert.equal(await page.isVisible('header nav'), false, 'the views are out of reach');
  assert.equal(await page.isVisible('#session'), false);
  assert.equal(await page.title(), 'Afterglow — sign in');
  await screenshot(page, 'login');
});

test('a wrong token is not accepted and the login page stays', async () => {
  await signIn(page, 'not-a-token-at-all');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.match(await page.textContent('#login-error'), /not accepted: the bearer token is not one of the collector's tokens/);
  assert.equal(await page.isVisible('#login-token'), true);
  assert.equal(await page.locator('#results').count(), 0);
  assert.equal(await storage(page, 'sessionStorage'), '{}', 'a refused token is not kept');
  assert.doesNotMatch(page.url(), /not-a-token/);
  await screenshot(page, 'login-wrong-token');
});

test("team-a's read token signs in and sees team-a only", async () => {
  const token = tokens['team-a-readers'];
  await signIn(page, token);
  await page.waitForSelector('#results .hit');
  await settled();
  assert.equal(await page.textContent('#session .session-name'), 'team-a-readers');
  assert.equal(await page.textContent('#session .session-tenants'), 'team-a');
  assert.equal(await page.isVisible('header nav'), true);

  // Every record the search shows is team-a's: the count is the collector's for that token.
  const teamA = (await apiGet('/api/v1/logs/search?q=*&limit=1&count=true', token)).body.count;
  const all = (await apiGet('/api/v1/logs/search?q=*&limit=1&count=true', tokens.ops)).body.count;
  assert.ok(teamA > 0 && all > teamA, `team-a has ${teamA} of ${all} records`);
  assert.match(await page.textContent('#count'), new RegExp(`(^| of )${teamA.toLocaleString('en-US')} hits( shown)?$`));
  assert.deepEqual([...new Set(await drawn('node'))], ['node-a']);
  assert.doesNotMatch(await page.textContent('#results'), new RegExp(TEAM_B_LINE));
  await screenshot(page, 'login-signed-in');

  // team-b's line exists (the admin finds it), but not for team-a.
  assert.equal((await apiGet(`/api/v1/logs/search?q=${TEAM_B_LINE}`, tokens.ops)).body.hits.length, 1);
  await page.fill('#q', TEAM_B_LINE);
  await page.press('#q', 'Enter');
  await settled();
  assert.equal(await page.locator('#results .hit').count(), 0);
  await page.waitForSelector('#empty:not([hidden])');
  assert.equal(await page.isVisible('#error'), false);

  // The clusters view lists team-a's cluster only.
  await page.click('header nav a[data-view="clusters"]');
  await page.waitForSelector('.cluster-table tbody tr');
  assert.deepEqual(await page.$$eval('.cluster-table tbody tr', (rows) => rows.map((row) => row.dataset.cluster)), ['alpha']);
  await screenshot(page, 'login-clusters-team-a');
});

test('a reload keeps the sign-in, a new browser context does not, localStorage holds nothing', async () => {
  const token = tokens['team-a-readers'];
  await page.goto(`${baseUrl}/?q=*`);
  await page.reload();
  await page.waitForSelector('#results .hit');
  assert.equal(await page.textContent('#session .session-name'), 'team-a-readers');
  assert.equal(await storage(page, 'localStorage'), '{}');
  assert.ok((await storage(page, 'sessionStorage')).includes(token), 'the token is in sessionStorage');
  assert.ok(!page.url().includes(token), 'the token is not in the URL');

  const other = await freshPage();
  try {
    await other.goto(`${baseUrl}/?q=*`);
    await other.waitForSelector('#login-token');
    assert.equal(await other.locator('#results').count(), 0);
  } finally {
    await other.close();
  }
});

test("the live tail follows team-a's file with the token", async () => {
  assert.ok(tailFile, 'AFTERGLOW_TAIL_FILE must name the log file team-a\'s agent tails');
  await page.goto(`${baseUrl}/?q=*&order=desc`);
  await settled();
  await page.click('#live');
  await page.waitForSelector('#live-status[data-state="open"]');
  const marker = `tokentail${Date.now()}`;
  const stamp = new Date().toISOString().replace('T', ' ').replace('.', ',').slice(0, 23);
  appendFileSync(tailFile, `${stamp} - distributed.worker - INFO - Live tail with a token ${marker}\n`);
  const row = await page.waitForFunction((text) => [...document.querySelectorAll('#results .hit')]
    .find((hit) => hit.querySelector('.message')?.textContent.includes(text)), marker, { timeout: 5000 });
  assert.equal(await row.evaluate((hit) => hit.dataset.node), 'node-a');
  assert.match(await page.textContent('#live-status'), /1 new/);
  await screenshot(page, 'login-live-tail');
  await page.click('#live');
  await page.waitForSelector('#live-status', { state: 'hidden' });
});

test('Sign out returns to the login page and the API then answers 401', async () => {
  await page.goto(`${baseUrl}/?q=*`);
  await page.waitForSelector('#results .hit');
  await page.click('#sign-out');
  await page.waitForSelector('#login-token');
  assert.equal(await page.isVisible('#session'), false);
  assert.equal(await page.isVisible('#login-error'), false);
  assert.equal(await storage(page, 'sessionStorage'), '{}');
  // The page's own API module has no token left to send.
  const status = await page.evaluate(async () => {
    const api = await import(new URL('lib/api.js', location.href));
    const res = await fetch('/api/v1/logs/search?q=*', { headers: api.authHeaders() });
    return res.status;
  });
  assert.equal(status, 401);
  // Navigating to a view comes back to the login page.
  await page.goto(`${baseUrl}/?view=clusters`);
  await page.waitForSelector('#login-token');
  assert.equal(await page.locator('.cluster-table').count(), 0);
});

test('a deep link opened without a token lands on its search after sign-in', async () => {
  const other = await freshPage();
  try {
    const query = 'level:WARNING';
    await other.goto(`${baseUrl}/?view=search&q=${encodeURIComponent(query)}`);
    await other.waitForSelector('#login-token');
    assert.equal(new URL(other.url()).searchParams.get('q'), query, 'the URL still names the search');
    await signIn(other, tokens['team-a-readers']);
    await other.waitForSelector('#results .hit');
    await settled(other);
    assert.equal(await other.inputValue('#q'), query);
    const levels = await drawn('level', other);
    assert.ok(levels.length > 0 && levels.every((level) => level === 'WARNING'), levels.join());
    assert.equal(new URL(other.url()).searchParams.get('q'), query);
  } finally {
    await other.close();
  }
});

test('a token that may not read signs in, and the views say so in place (403)', async () => {
  const other = await freshPage();
  try {
    await other.goto(`${baseUrl}/?q=*`);
    await signIn(other, tokens['team-a-ingest']);
    await other.waitForSelector('#error:not([hidden])');
    assert.match(await other.textContent('#error'), /the token "team-a-ingest" may not read/);
    assert.equal(await other.textContent('#session .session-tenants'), 'team-a (may not read)');
    assert.equal(await other.isVisible('#login-token'), false, 'a 403 is not a reason to sign in again');
  } finally {
    await other.close();
  }
});

test('over its rate, a token gets "too many requests, retry in N s"', async () => {
  const other = await freshPage();
  try {
    await other.goto(`${baseUrl}/?q=*`);
    await signIn(other, tokens['team-a-slow']);
    await other.waitForSelector('#error:not([hidden])');
    assert.match(await other.textContent('#error'), /^Too many requests, retry in \d+ s\.$/);
    assert.equal(await other.isVisible('#login-token'), false);
  } finally {
    await other.close();
  }
});

test('the login page in the dark theme and at 400 px', async () => {
  const narrow = await freshPage({ viewport: { width: 400, height: 800 }, colorScheme: 'dark' });
  try {
    await narrow.goto(baseUrl);
    await narrow.waitForSelector('#login-token');
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
    await screenshot(narrow, 'login-narrow-dark');
    await signIn(narrow, 'wrong');
    await narrow.waitForSelector('#login-error:not([hidden])');
    await screenshot(narrow, 'login-narrow-dark-wrong-token');
    await signIn(narrow, tokens.ops);
    await narrow.waitForSelector('#results .hit');
    assert.equal(await narrow.textContent('#session .session-tenants'), 'all tenants');
    const signedInOverflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(signedInOverflow <= 0, `signed in, the page is ${signedInOverflow}px wider than the window`);
    await screenshot(narrow, 'login-narrow-dark-signed-in');
  } finally {
    await narrow.close();
  }
  const dark = await freshPage({ colorScheme: 'dark' });
  try {
    await dark.goto(baseUrl);
    await dark.waitForSelector('#login-token');
    await screenshot(dark, 'login-dark');
  } finally {
    await dark.close();
  }
});
