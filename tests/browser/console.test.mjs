// The console end to end in Debian's Chromium: the REAL server with its admin listener and a user
// made by `switchyard users add`; log in with the keyboard; create a webhook destination against
// a local sink from the catalogue form; switch it on; send events with the real
// @segment/analytics-node; see them in the live view with their outcome and at the sink; switch
// it off and see no more arrive; make the sink fail, see the dead letters fill, redrive after it
// recovers; start a replay and watch its progress reach 100 %. Every page is screenshotted
// (1366x768) into SY_CONSOLE_ARTIFACTS (default build/release/browser-artifacts/console).
//
// The test fails on any console error, uncaught exception, failed request or HTTP error answer,
// except those listed in `expected` (and the live stream's own cancellation when a page is left).
//
// Parts that need admin routes this server does not serve yet (marked x-planned in its OpenAPI
// document: the live view, dead letters, replays) are skipped, saying which route is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startSwitchyard, launchChromium, waitFor, sleep, REPO, WRITE_KEY } from './harness.mjs';

const require = createRequire(join(REPO, 'tests/e2e/package.json'));
const { Analytics } = require('@segment/analytics-node');

const ARTIFACTS = process.env.SY_CONSOLE_ARTIFACTS || join(REPO, 'build/release/browser-artifacts/console');
const USER = 'alice';
const PASSWORD = 'correct horse battery';

let sy, sink, browser, page;
let served = new Set();
const problems = [];
const consoleErrors = [];
// Answers that are part of the flow, not defects: [method, path regexp, status].
const expected = [
  // Figures of a destination that has not run since the server started (docs/admin-api.md).
  ['GET', /^\/api\/v1\/destinations\/[^/]+\/stats/, 404],
  // The catalogue form's deliberate bad URL, refused by the server naming settings.url.
  ['POST', /^\/api\/v1\/destinations$/, 400],
];
const allowedUrls = new Set();  // URLs answered with an expected error status

// A webhook receiver: records every event; `mode` 'ok' answers 200, 'reject' 400 (a permanent
// failure: dead-lettered at once).
function startSink() {
  const state = { events: [], mode: 'ok' };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (state.mode === 'reject') {
        res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"sink says no"}');
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString() || 'null');
      for (const e of Array.isArray(body) ? body : [body]) state.events.push(e);
      res.writeHead(200).end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    state,
    url: `http://127.0.0.1:${server.address().port}/hook`,
    ids: () => new Set(state.events.map((e) => e && e.messageId)),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  })));
}

// Sends `n` track events with the real analytics-node; answers their messageIds.
async function sendEvents(tag, n) {
  const analytics = new Analytics({ writeKey: WRITE_KEY, host: sy.base, flushAt: n, flushInterval: 200, maxRetries: 2 });
  const errors = [];
  analytics.on('error', (e) => errors.push(String(e && (e.code || e.message) || e)));
  const ids = [];
  for (let i = 0; i < n; i++) {
    const messageId = `${tag}-${i}-${Date.now()}`;
    ids.push(messageId);
    analytics.track({ userId: `user-${i}`, event: `Console ${tag}`, messageId, properties: { seq: i, tag } });
  }
  await analytics.closeAndFlush({ timeout: 10000 });
  assert.deepEqual(errors, [], 'analytics-node reported errors');
  return ids;
}

async function shot(name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

async function open(path) {
  await page.goto(sy.adminBase + path);
  await page.waitForSelector('main h1');
}

async function api(method, path, body) {
  const res = await fetch(sy.adminBase + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
let token = '';

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  sink = await startSink();
  sy = await startSwitchyard({
    admin: true,
    extra: ['archive:', '  store: local', '  path: ./data/archive', '  roll_age: 200ms'],
  });
  sy.addUser(USER, 'admin', PASSWORD);
  // A token for the test's own checks (the browser uses the session, like a person).
  const { execFileSync } = await import('node:child_process');
  token = execFileSync(process.env.SWITCHYARD_BIN || join(REPO, 'build/release/switchyard'),
    ['tokens', 'create', 'console-test', '--role', 'admin', '--config', sy.config], { encoding: 'utf8' }).trim().split(/\s+/).pop();
  const doc = await (await fetch(sy.adminBase + '/api/v1/openapi.json')).json();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (typeof op === 'object' && !op['x-planned'] && !item['x-planned']) served.add(`${method.toUpperCase()} ${path}`);
    }
  }
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.setViewportSize({ width: 1366, height: 768 });
  page.on('dialog', (d) => d.accept());
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every error answer as "Failed to load resource"; the expected ones are not defects.
    consoleErrors.push({ text: m.text(), url: m.location().url });
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A request the page itself gave up (leaving a page with its live stream open or a refresh
    // in flight: the test navigates with full page loads) is not a failure of the server, whose
    // failures read ERR_CONNECTION_RESET, ERR_EMPTY_RESPONSE, …
    if (/ERR_ABORTED/.test(r.failure()?.errorText || '')) return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() < 400) return;
    const url = new URL(r.url());
    const ok = expected.some(([m, re, st]) => m === r.request().method() && re.test(url.pathname) && st === r.status());
    if (ok) allowedUrls.add(r.url());
    else problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
});

after(async () => {
  await browser?.close();
  await sy?.stop();
  await sink?.close();
});

const skipUnless = (t, route) => {
  if (served.has(route)) return false;
  t.skip(`${route} is not served by this build yet (x-planned in its OpenAPI document)`);
  return true;
};

test('assets: CSP, immutable assets under the build id, the page revalidated', async () => {
  const res = await fetch(sy.adminBase + '/destinations');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy'), /^default-src 'self'/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const html = await res.text();
  const script = html.match(/src="(\/assets\/[0-9a-f]{16}\/app\.js)"/);
  assert.ok(script, 'the page loads app.js under the build id');
  const js = await fetch(sy.adminBase + script[1]);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  const again = await fetch(sy.adminBase + script[1], { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(sy.adminBase + '/assets/0000000000000000/app.js')).status, 404);
  // The public listener serves no console.
  assert.equal((await fetch(sy.base + '/overview')).status, 404);
});

test('login with the keyboard; the overview', async () => {
  await page.goto(sy.adminBase + '/');
  await page.waitForURL(/\/login/);
  await page.waitForSelector('#login-user:focus');
  await shot('01-login');
  await page.keyboard.type(USER);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/overview$/);
  await page.waitForSelector('main h1:text("Overview")');
  await page.waitForSelector('main section.panel');
  await shot('02-overview');
  assert.match(await page.textContent('nav.side'), /Signed in as\s*alice/);
});

test('sources: list and one source with its snippet', async () => {
  await page.click('nav.side a:text("Sources")');
  await page.waitForSelector('table[aria-label="Sources"] tr[data-source="web"]');
  await shot('03-sources');
  await page.click('tr[data-source="web"] a');
  await page.waitForSelector('#snippet');
  const snippet = await page.textContent('#snippet');
  assert.match(snippet, /analytics\.js\/v1\//);
  assert.match(snippet, /YOUR_WRITE_KEY/, 'a file key is not known to the console: the placeholder');
  await shot('04-source');
});

test('create a webhook destination from the catalogue form, then switch it on', async () => {
  await page.click('nav.side a:text("Destinations")');
  await page.waitForSelector('main h1:text("Destinations")');
  await page.waitForSelector('main .empty');  // no destination yet: an empty state that says what to do
  await shot('05-destinations-empty');
  await page.click('main a:text("Add destination")');
  await page.waitForSelector('article.card[data-type="webhook"]');
  const types = await page.$$eval('article.card', (cards) => cards.map((c) => c.dataset.type));
  const catalogue = (await api('GET', '/api/v1/destination-types')).body.types.map((t) => t.type);
  assert.deepEqual(types, catalogue, 'the catalogue shows every destination type');
  await shot('06-catalogue');
  await page.click('article.card[data-type="webhook"] a');
  await page.waitForSelector('form#new-destination');
  // The form is generated from the settings table: one row per setting.
  for (const s of ['url', 'headers', 'secret', 'batch', 'max_events']) await page.waitForSelector(`[data-field="settings.${s}"]`);
  await page.fill('#name', 'sink');
  await page.check('input[name="sources"][value="web"]');
  await page.check('#allow_private_network');
  // A bad value is refused by the server, and the error lands next to the field it names.
  await page.fill('[id="settings.url"]', 'ftp://127.0.0.1/nope');
  await page.click('button:text("Create destination")');
  await page.waitForSelector('[data-field="settings.url"] .field-error:not(:empty)');
  assert.match(await page.textContent('[data-field="settings.url"] .field-error'), /http:\/\/ or https:\/\//);
  await shot('07-new-webhook-error');
  await page.fill('[id="settings.url"]', sink.url);
  await page.fill('[id="settings.secret"]', 's3cret-value');
  await page.press('[id="settings.secret"]', 'Enter');  // forms submit with Enter
  await page.waitForURL(/\/destinations\/sink$/);
  await page.waitForSelector('button[role="switch"][aria-checked="false"]');
  const created = (await api('GET', '/api/v1/destinations/sink')).body;
  assert.equal(created.enabled, false);
  assert.deepEqual(created.sources, ['web']);
  assert.deepEqual(created.settings.secret, { set: true }, 'the secret was stored, write-only');
  await shot('08-destination-off');
  // Switch it on with the keyboard.
  await page.focus('main .page-head button[role="switch"]');
  await page.keyboard.press('Space');
  await page.waitForSelector('main .page-head button[role="switch"][aria-checked="true"]');
  assert.equal((await api('GET', '/api/v1/destinations/sink')).body.enabled, true);
});

test('the live view shows each delivery attempt with its outcome', async (t) => {
  if (skipUnless(t, 'GET /api/v1/live')) return;
  await page.click('nav.tabs a:text("Live")');
  await page.waitForSelector('table[data-live="destination"]');
  await waitFor(async () => (await page.textContent('main .live-head .badge')) === 'live', 'the live stream to open');
  const ids = await sendEvents('live', 3);
  for (const id of ids) {
    await page.waitForSelector(`table[data-live="destination"] tr[data-message-id="${id}"][data-stage="delivered"]`, { timeout: 10000 });
  }
  await waitFor(() => ids.every((id) => sink.ids().has(id)), 'the events at the sink');
  await shot('09-destination-live');
  // A source's live view: each event as received.
  await open('/sources/web');
  await page.waitForSelector('table[data-live="source"]');
  await waitFor(async () => (await page.textContent('main .live-head .badge')) === 'live', 'the source stream to open');
  const more = await sendEvents('source-live', 2);
  for (const id of more) {
    await page.waitForSelector(`table[data-live="source"] tr[data-message-id="${id}"][data-stage="received"]`, { timeout: 10000 });
  }
  await page.click('table[data-live="source"] tr:first-child details summary');
  await shot('09-source-live');
  await waitFor(() => more.every((id) => sink.ids().has(id)), 'those events at the sink too');
  await open('/destinations/sink');
});

test('events sent with analytics-node reach the sink and count in the figures', async () => {
  const ids = await sendEvents('on', 5);
  await waitFor(() => ids.every((id) => sink.ids().has(id)), 'the events at the sink');
  await open('/destinations/sink?tab=activity');
  await waitFor(async () => {
    await page.waitForSelector('[data-figure="delivered"] .n', { timeout: 11000 });
    return Number((await page.textContent('[data-figure="delivered"] .n')).replace(/,/g, '')) >= 5;
  }, 'the delivered figure', 25000);
  await shot('10-destination-activity');
  // The events are the ones sent, once each.
  const got = sink.state.events.filter((e) => ids.includes(e.messageId));
  assert.equal(got.length, 5);
  assert.equal(got[0].event, 'Console on');
});

test('switched off, no more events arrive', async () => {
  await page.click('main .page-head button[role="switch"]');
  await page.waitForSelector('main .page-head button[role="switch"][aria-checked="false"]');
  assert.equal((await api('GET', '/api/v1/destinations/sink')).body.enabled, false);
  const before = sink.state.events.length;
  const ids = await sendEvents('off', 3);
  await sleep(2500);
  assert.equal(sink.state.events.length, before, 'nothing reaches the sink while switched off');
  assert.ok(ids.every((id) => !sink.ids().has(id)));
  // They are stored, and wait for the switch: on again, they go.
  await page.click('main .page-head button[role="switch"]');
  await page.waitForSelector('main .page-head button[role="switch"][aria-checked="true"]');
  await waitFor(() => ids.every((id) => sink.ids().has(id)), 'the held events after switching on again');
});

test('the sink fails: dead letters fill; redrive after it recovers', async (t) => {
  if (skipUnless(t, 'GET /api/v1/destinations/{name}/dlq')) return;
  sink.state.mode = 'reject';
  const ids = await sendEvents('dlq', 4);
  await page.click('nav.tabs a:text("Dead letters")');
  await waitFor(async () => {
    await page.click('main button:text("Refresh")');
    await sleep(300);
    return Number(await page.getAttribute('section[data-dlq-total]', 'data-dlq-total')) >= 4;
  }, 'the dead letters', 20000);
  for (const id of ids) assert.ok(await page.$(`td:text("${id}")`), `dead letter ${id} listed`);
  await page.click('tr:first-child details summary');
  await shot('11-destination-dlq');
  sink.state.mode = 'ok';
  await page.click('main button:text("Redrive all")');
  await waitFor(() => ids.every((id) => sink.ids().has(id)), 'the redriven events at the sink');
  await waitFor(async () => (await page.getAttribute('section[data-dlq-total]', 'data-dlq-total')) === '0', 'an empty dead-letter list');
  await shot('12-destination-dlq-empty');
});

test('destination settings: provenance and write-only secrets', async () => {
  await open('/destinations/sink?tab=settings');
  await page.waitForSelector('form#settings');
  assert.match(await page.textContent('[data-field="settings.url"]'), /from console/);
  assert.equal(await page.textContent('[data-field="settings.secret"] .badge.ok'), 'set');
  assert.equal(await page.inputValue('[id="settings.secret"]'), '', 'a secret is never shown');
  await shot('13-destination-settings');
});

test('replay: start one and watch it reach 100 %', async (t) => {
  if (skipUnless(t, 'POST /api/v1/replays')) return;
  await open('/replay');
  await page.waitForSelector('form#new-replay');
  await page.selectOption('#destination', 'sink');
  await shot('14-replay-form');
  await page.click('button:text("Start replay")');
  await page.waitForSelector('tr[data-replay] progress');
  await waitFor(async () => (await page.$('tr[data-replay][data-state="done"]')) !== null, 'the replay to finish', 30000);
  assert.equal(await page.getAttribute('tr[data-replay][data-state="done"] progress', 'value'), '100');
  assert.equal(await page.getAttribute('tr[data-replay][data-state="done"] [data-percent]', 'data-percent'), '100.0');
  await shot('15-replay-done');
});

test('overview, warehouse, users, tokens, audit: each page renders', async () => {
  // The overview shows real figures: the events this test sent came in and went out.
  await open('/overview');
  await page.waitForSelector('main tr[data-destination="sink"]');
  const figure = async (name) => Number((await page.textContent(`[data-figure="${name}"] .n`)).replace(/[^0-9]/g, ''));
  assert.ok(await figure('in') > 0, 'events in, last hour');
  assert.ok(await figure('out') > 0, 'events delivered, last hour');
  assert.match(await page.textContent('tr[data-destination="sink"]'), /healthy/);
  assert.doesNotMatch(await page.textContent('main'), /not available/);
  assert.match(await page.textContent('tr[data-source]'), /\d/);  // last event, events since start
  await shot('16-overview-later');
  // A SQLite warehouse, loaded now: the page shows its load and its tracks table with rows.
  const created = await api('POST', '/api/v1/destinations', {
    name: 'dw', type: 'sqlite', settings: { path: join(sy.dir, 'warehouse'), sync_interval: '1h' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await sendEvents('warehouse', 5);
  const synced = await api('POST', '/api/v1/destinations/dw/sync');
  assert.equal(synced.status, 200, JSON.stringify(synced.body));
  assert.ok(synced.body.loaded >= 5, JSON.stringify(synced.body));
  await open('/warehouse');
  await page.waitForSelector('section[data-warehouse="dw"] table[aria-label="Tables of dw"]');
  const tracks = await page.textContent('section[data-warehouse="dw"] table[aria-label="Tables of dw"]');
  assert.match(tracks, /tracks[1-9]/);  // source, table, rows: the estimate
  assert.match(await page.textContent('section[data-warehouse="dw"] table[aria-label="Last loads of dw"]'), /none/);  // no error
  assert.match(await page.textContent('section[data-warehouse="dw"]'), /max\(rowid\)/);
  await shot('16-warehouse');
  await open('/users');
  await page.waitForSelector('tr[data-user="alice"]');
  await shot('17-users');
  await open('/tokens');
  await page.waitForSelector('tr[data-token="console-test"]');
  await page.fill('#name', 'ci');
  await page.press('#name', 'Enter');
  await page.waitForSelector('#new-token-value');
  assert.match(await page.textContent('#new-token-value'), /^sy_[0-9a-f]{64}$/);
  await shot('18-tokens');
  await open('/audit');
  await page.waitForSelector('tr[data-action="destination.create"]');
  await page.waitForSelector('tr[data-action="token.create"]');
  await shot('19-audit');
});

test('sign out: the pages ask for a login again', async () => {
  await open('/overview');
  await page.click('button:text("Sign out")');
  await page.waitForURL(/\/login/);
  await page.goto(sy.adminBase + '/destinations');
  await page.waitForURL(/\/login\?next=%2Fdestinations/);
});

test('a viewer reads but cannot change, and has no admin pages', async () => {
  sy.addUser('victor', 'viewer', 'viewer password 1');
  await page.goto(sy.adminBase + '/login');
  await page.fill('#login-user', 'victor');
  await page.fill('#login-password', 'viewer password 1');
  await page.press('#login-password', 'Enter');
  await page.waitForURL(/\/overview$/);
  assert.equal(await page.$('nav.side a[href="/users"]'), null, 'no admin links for a viewer');
  await open('/destinations/sink?tab=settings');
  await page.waitForSelector('form#settings');
  assert.ok(await page.isDisabled('main .page-head button[role="switch"]'), 'the switch is disabled');
  assert.equal(await page.$('form#settings button[type="submit"]'), null, 'no save button');
  await shot('20-viewer-settings');
  await open('/users');
  assert.match(await page.textContent('main'), /cannot open this page/);
  await page.click('button:text("Sign out")');
  await page.waitForURL(/\/login/);
});

test('no console error, uncaught exception or failed request on any page', () => {
  for (const { text, url } of consoleErrors) {
    // Chromium logs every error answer as "Failed to load resource"; the expected ones are not defects.
    if (/^Failed to load resource: the server responded with a status of/.test(text) && allowedUrls.has(url)) continue;
    problems.push(`console error: ${text} (${url})`);
  }
  assert.deepEqual(problems, []);
});
