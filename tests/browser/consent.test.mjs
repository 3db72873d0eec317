// Consent in the browser: no device-mode tag loads, and no call reaches it, before the categories
// of its destination (`consent_categories`) are granted, by analytics.load options,
// analytics.consent(), an IAB TCF v2 CMP (__tcfapi) or Google Consent Mode; a grant mid-visit
// loads it then; a revocation stops further calls; every event carries
// context.consent.categoryPreferences to the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSwitchyard, startStatic, launchChromium, snippet, waitFor, sleep, REPO, WRITE_KEY, WRITE_KEY_2 } from './harness.mjs';
import { startTagServer } from './tags.mjs';

let sy, site, browser, tags;

function destinations(t) {
  const d = (name, type, sources, categories, settings) => [
    `  - name: ${name}`,
    `    type: ${type}`,
    '    mode: device',
    `    sources: [${sources}]`,
    `    consent_categories: [${categories}]`,
    '    settings:',
    ...Object.entries(settings).map(([k, v]) => `      ${k}: '${v}'`),
  ];
  return [
    'destinations:',
    ...d('ga', 'ga4-gtag', 'web', 'analytics', { measurement_id: 'G-C', tag_url: `${t}/gtag.js?id={measurement_id}` }),
    ...d('fb', 'meta-pixel', 'web', 'advertising', { pixel_id: '77', tag_url: `${t}/fbevents.js` }),
    ...d('hj', 'hotjar', 'other', 'analytics', { site_id: '5', tag_url: `${t}/hotjar.js?id={site_id}` }),
    ...d('mp', 'mixpanel-browser', 'other', 'analytics, advertising', { token: 'tk', tag_url: `${t}/mixpanel.js` }),
  ];
}

// The snippet with analytics.load options.
const withOptions = (key, options) => {
  const text = snippet(sy.base, key);
  const call = `a.load("${key}")`;
  if (!text.includes(call)) throw new Error('snippet changed shape');
  return options ? text.replace(call, `a.load("${key}",${JSON.stringify(options)})`) : text;
};
const html = (key, { options, head = '', body = '' } = {}) => ({
  body: `<!doctype html><html><head><title>Consent</title>${head}<script>${withOptions(key, options)}</script></head><body>${body}</body></html>`,
});

// A TCF v2 CMP stub: answers addEventListener at once with `purposes` granted, and fires again
// when the page calls window.tcfFire(purposes) (the visitor's choice).
const tcfStub = (purposes) => `<script>
  (function () {
    var listeners = [];
    var data = function (p, status) {
      var consents = {};
      p.forEach(function (n) { consents[n] = true; });
      return { tcString: 'stub', gdprApplies: true, eventStatus: status, listenerId: 1, purpose: { consents: consents, legitimateInterests: {} } };
    };
    window.__tcfapi = function (cmd, version, cb) {
      if (cmd != 'addEventListener' || version != 2) return;
      listeners.push(cb);
      cb(data(${JSON.stringify(purposes)}, 'tcloaded'), true);
    };
    window.tcfFire = function (p) { listeners.forEach(function (cb) { cb(data(p, 'useractioncomplete'), true); }); };
  })();
</script>`;

before(async () => {
  tags = await startTagServer();
  sy = await startSwitchyard({ extra: destinations(tags.base) });
  site = await startStatic({
    '/load.html': html(WRITE_KEY, {
      options: { consent: { categoryPreferences: { analytics: true, advertising: false } } },
      body: "<script>analytics.track('Before Grant')</script>",
    }),
    '/unknown.html': html(WRITE_KEY, { body: "<script>analytics.track('Waiting')</script>" }),
    '/tcf.html': html(WRITE_KEY_2, { head: tcfStub([1, 8, 9, 10]), body: "<script>analytics.track('TCF Event')</script>" }),
    '/demo.html': {
      body: readFileSync(join(REPO, 'examples/device-mode/index.html'), 'utf8')
        .replaceAll('https://SWITCHYARD_HOST', sy.base)
        .replaceAll('YOUR_WRITE_KEY', WRITE_KEY),
    },
    '/gcm.html': html(WRITE_KEY_2, {
      head: `<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}
        gtag('consent', 'default', { analytics_storage: 'denied', ad_storage: 'denied' });</script>`,
      body: "<script>analytics.track('GCM Event')</script>",
    }),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await sy?.stop();
  await tags?.close();
});

const calls = (tab, vendor) => tab.evaluate((v) => (window.__tagCalls || []).filter((c) => c[0] == v).map((c) => c.slice(1)), vendor);
const view = (tab) => tab.evaluate(() => window.analytics && analytics.debugView && analytics.debugView());
const state = async (tab, name) => ((await view(tab)) || { integrations: {} }).integrations[name]?.state;
// The events this page sent (the visitor's anonymousId persists across the suite's pages).
const events = (tab, source) =>
  tab
    .evaluate(() => [analytics.user().anonymousId(), location.pathname])
    .then(([anon, path]) => sy.dump(source).filter((e) => e.anonymousId === anon && e.context.page.path === path));

test('load options: granted tags load, denied ones do not; a grant mid-visit loads; a revocation stops calls', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/load.html');
  await waitFor(async () => (await state(tab, 'ga')) == 'ready', 'GA4 (analytics, granted) loads');
  await sleep(300);
  assert.equal(await state(tab, 'fb'), 'waiting');
  assert.equal(tags.requested('/fbevents.js').length, 0, 'the denied tag is never requested');
  assert.deepEqual(await calls(tab, 'fbq'), []);
  assert.deepEqual(
    (await calls(tab, 'gtag')).filter((c) => c[0] == 'event').map((c) => c[1]),
    ['page_view', 'before_grant'],
  );

  // The visitor grants advertising: the pixel loads now; what was tracked before is not sent.
  await tab.evaluate(() => analytics.consent({ advertising: true }));
  await waitFor(async () => (await state(tab, 'fb')) == 'ready', 'the pixel loads after the grant');
  await tab.evaluate(() => analytics.track('After Grant'));
  const fbq = await calls(tab, 'fbq');
  assert.deepEqual(fbq.map((c) => c.slice(0, 2)), [['init', '77'], ['trackCustom', 'After Grant']]);

  // Revoking analytics: GA4 receives nothing more; the pixel still does.
  await tab.evaluate(() => analytics.consent({ categoryPreferences: { analytics: false } }));
  await tab.evaluate(() => analytics.track('After Revoke'));
  const gaEvents = (await calls(tab, 'gtag')).filter((c) => c[0] == 'event').map((c) => c[1]);
  assert.deepEqual(gaEvents, ['page_view', 'before_grant', 'after_grant']);
  assert.deepEqual((await calls(tab, 'fbq')).at(-1).slice(0, 2), ['trackCustom', 'After Revoke']);

  // Every event reached Switchyard with the consent in force when it was made.
  const server = await waitFor(async () => {
    const ev = await events(tab, 'web');
    return ev.length >= 4 && ev;
  }, 'four events at Switchyard');
  const prefs = (name) => server.find((e) => e.event === name).context.consent.categoryPreferences;
  assert.deepEqual(server.find((e) => e.type === 'page').context.consent.categoryPreferences, { analytics: true, advertising: false });
  assert.deepEqual(prefs('Before Grant'), { analytics: true, advertising: false });
  assert.deepEqual(prefs('After Grant'), { analytics: true, advertising: true });
  assert.deepEqual(prefs('After Revoke'), { analytics: false, advertising: true });
  await tab.close();
});

test('without any consent information no tag with categories loads; calls wait, then go on a grant', async () => {
  const tab = await browser.context.newPage();
  const before = tags.requests.length;
  await tab.goto(site.base + '/unknown.html');
  await waitFor(async () => ((await view(tab)) || { integrations: { ga: {} } }).integrations.ga.queued == 2, 'page and track queued');
  await sleep(300);
  assert.equal(tags.requests.length, before, 'no tag requested');
  assert.equal(await state(tab, 'fb'), 'waiting');
  const server = await waitFor(async () => {
    const ev = await events(tab, 'web');
    return ev.length >= 2 && ev;
  }, 'events at Switchyard');
  for (const e of server) assert.equal(e.context.consent, undefined, 'no consent information: none sent');
  await tab.evaluate(() => analytics.consent({ analytics: true, advertising: false }));
  await waitFor(async () => (await state(tab, 'ga')) == 'ready', 'GA4 loads on the grant');
  assert.deepEqual(
    (await calls(tab, 'gtag')).filter((c) => c[0] == 'event').map((c) => c[1]),
    ['page_view', 'waiting'],
  );
  // The denied one forgot its queue.
  const fb = (await view(tab)).integrations.fb;
  assert.equal(fb.queued, 0);
  assert.equal(fb.dropped, 2);
  await tab.close();
});

test('IAB TCF v2: purposes map to categories; the choice made later loads the rest', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/tcf.html');
  await waitFor(async () => (await state(tab, 'hj')) == 'ready', 'Hotjar (analytics: purposes 1, 8, 9, 10) loads');
  await sleep(200);
  assert.equal(await state(tab, 'mp'), 'waiting', 'Mixpanel also needs advertising');
  assert.deepEqual((await view(tab)).consent, { functional: true, analytics: true, advertising: false, personalization: false });
  await tab.evaluate(() => window.tcfFire([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  await waitFor(async () => (await state(tab, 'mp')) == 'ready', 'Mixpanel loads after the visitor accepts all');
  await tab.evaluate(() => analytics.track('After Accept'));
  assert.deepEqual((await calls(tab, 'mixpanel')).filter((c) => c[0] == 'track').map((c) => c[1]), ['After Accept']);
  const server = await waitFor(async () => {
    const ev = await events(tab, 'other');
    return ev.find((e) => e.event === 'After Accept') && ev;
  }, 'events at Switchyard');
  assert.equal(server.find((e) => e.event === 'TCF Event').context.consent.categoryPreferences.advertising, false);
  assert.equal(server.find((e) => e.event === 'After Accept').context.consent.categoryPreferences.advertising, true);
  await tab.close();
});

test('Google Consent Mode: a consent update in dataLayer grants the category', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/gcm.html');
  await waitFor(() => view(tab), 'the library');
  await sleep(300);
  assert.equal(await state(tab, 'hj'), 'waiting');
  assert.deepEqual((await view(tab)).consent, { analytics: false, advertising: false });
  await tab.evaluate(() => gtag('consent', 'update', { analytics_storage: 'granted' }));
  await waitFor(async () => (await state(tab, 'hj')) == 'ready', 'Hotjar loads after the update', 5000);
  assert.equal(await state(tab, 'mp'), 'waiting');
  await tab.close();
});

// The demo page of examples/device-mode: the tags wait for the banner. With
// SY_BROWSER_ARTIFACTS set, its screenshots are written there (docs/browser/ holds a copy).
test('the demo page loads the tags after the visitor accepts', async () => {
  const tab = await browser.context.newPage();
  await tab.setViewportSize({ width: 900, height: 560 });
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  const out = process.env.SY_BROWSER_ARTIFACTS;
  if (out) mkdirSync(out, { recursive: true });
  const shot = async (name) => out && tab.screenshot({ path: join(out, name) });
  await tab.goto(site.base + '/demo.html');
  await waitFor(() => tab.evaluate(() => document.querySelectorAll('#tags .state.waiting').length == 2), 'two tags waiting');
  await shot('device-1-before-consent.png');
  await tab.click('#analytics');
  await waitFor(async () => (await state(tab, 'ga')) == 'ready', 'GA4 after Accept analytics');
  await waitFor(() => tab.evaluate(() => document.querySelectorAll('#tags .state.ready').length == 1), 'the panel shows it');
  assert.equal(await state(tab, 'fb'), 'waiting');
  await shot('device-2-analytics-accepted.png');
  await tab.evaluate(() => analytics.consent({ advertising: true }));
  await waitFor(async () => (await state(tab, 'fb')) == 'ready', 'the pixel after advertising is accepted');
  await tab.click('#buy');
  await waitFor(() => tab.evaluate(() => document.querySelectorAll('#tags .state.ready').length == 2), 'the panel shows both');
  await sleep(300);
  await shot('device-3-all-accepted.png');
  assert.deepEqual(errors, []);
  await tab.close();
});
