// The official @segment/analytics-next (npm) in headless Chromium, bundled for the test page with
// esbuild, loading its settings from Switchyard (cdnURL) and sending events to it (apiHost), in
// standard and batching delivery. Events are checked in `switchyard dump`. The source has
// device-mode destinations: analytics-next ignores their entries in the settings document (it
// installs only entries marked as browser components) and loads no tag (docs/browser.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { join } from 'node:path';
import { startSwitchyard, startStatic, launchChromium, waitFor, HERE, WRITE_KEY } from './harness.mjs';
import { startTagServer } from './tags.mjs';

let sy, site, browser, tags;

before(async () => {
  tags = await startTagServer();
  sy = await startSwitchyard({
    extra: [
      'destinations:',
      '  - {name: ga, type: ga4-gtag, mode: device, settings: {measurement_id: G-N, tag_url: "' + tags.base + '/gtag.js"}}',
      '  - {name: fb, type: meta-pixel, mode: device, settings: {pixel_id: "9", tag_url: "' + tags.base + '/fbevents.js"}}',
    ],
  });
  const bundle = await build({
    stdin: {
      contents: "import { AnalyticsBrowser } from '@segment/analytics-next'; window.AnalyticsBrowser = AnalyticsBrowser;",
      resolveDir: HERE,
    },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'error',
    nodePaths: [join(HERE, 'node_modules')],
  });
  const page = {
    body: `<!doctype html><html><head><title>Next Page</title>
      <script src="/analytics-next.js"></script></head><body></body></html>`,
  };
  site = await startStatic({
    '/analytics-next.js': { type: 'application/javascript', body: bundle.outputFiles[0].text },
    '/next.html': page,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await sy?.stop();
  await tags?.close();
});

async function runPage(delivery) {
  const tab = await browser.context.newPage();
  const requests = [];
  tab.on('request', (r) => requests.push(r.url()));
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await browser.context.clearCookies(); // a fresh visitor for each run
  await tab.goto(site.base + '/next.html?run=' + delivery);
  await tab.evaluate(() => localStorage.clear());
  const result = await tab.evaluate(
    async ({ cdn, host, writeKey, delivery }) => {
      // Standard: only cdnURL is given; apiHost and protocol come from Switchyard's settings.
      // Batching: apiHost given explicitly too, as users of a proxy in front would.
      const options = {};
      if (delivery === 'batching') {
        options.integrations = {
          'Segment.io': { apiHost: host, protocol: 'http', deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 300 } } },
        };
      }
      const [analytics] = await window.AnalyticsBrowser.load({ writeKey, cdnURL: cdn }, options);
      await analytics.page('Docs', 'Next Test');
      await analytics.identify('next-user-' + delivery, { plan: 'team' });
      await analytics.track('Next Event', { delivery });
      await analytics.group('next-org', { seats: 3 });
      await analytics.alias('next-user-' + delivery + '-2');
      return {};
    },
    { cdn: sy.base, host: `127.0.0.1:${sy.port}/v1`, writeKey: WRITE_KEY, delivery },
  );
  const events = await waitFor(() => {
    // analytics-next gives a new anonymousId to a newly identified user: select by page URL.
    const ev = sy.dump('web').filter((e) => e.context.page.search === '?run=' + delivery);
    return ev.length >= 5 && ev;
  }, `five analytics-next events (${delivery})`, 15000);
  await tab.close();
  assert.deepEqual(errors, []);
  return { events, requests };
}

for (const delivery of ['standard', 'batching']) {
  test(`analytics-next (${delivery} delivery) loads its settings from Switchyard and its events land`, async () => {
    const { events, requests } = await runPage(delivery);
    assert.ok(requests.includes(`${sy.base}/v1/projects/${WRITE_KEY}/settings`), 'settings fetched from Switchyard');
    assert.ok(!requests.some((u) => /segment\.(io|com)/.test(u)), `no request to Segment: ${requests.join(' ')}`);
    // The device-mode entries are there, and analytics-next neither loads their tags nor asks
    // for integration code (next-integrations/…).
    const settings = await (await fetch(`${sy.base}/v1/projects/${WRITE_KEY}/settings`)).json();
    assert.deepEqual(Object.keys(settings.integrations).sort(), ['Segment.io', 'fb', 'ga']);
    assert.deepEqual(tags.requests, []);
    const elsewhere = requests.filter((u) => !u.startsWith(sy.base) && !u.startsWith(site.base));
    assert.deepEqual(elsewhere, []);
    const posts = requests.filter((u) => u.startsWith(sy.base + '/v1/') && !u.includes('/projects/'));
    if (delivery === 'batching') assert.ok(posts.length > 0 && posts.every((u) => u === sy.base + '/v1/b'), posts.join(' '));
    else assert.deepEqual([...new Set(posts)].sort(), ['a', 'g', 'i', 'p', 't'].map((l) => `${sy.base}/v1/${l}`));
    assert.deepEqual(events.map((e) => e.type).sort(), ['alias', 'group', 'identify', 'page', 'track']);
    for (const e of events) {
      assert.equal(e.context.library.name, 'analytics.js');
      assert.equal(e.context.page.path, '/next.html');
      assert.equal(e.context.ip, '127.0.0.1');
    }
    const track = events.find((e) => e.type === 'track');
    assert.equal(track.event, 'Next Event');
    assert.deepEqual(track.properties, { delivery });
    assert.equal(track.userId, 'next-user-' + delivery);
    const page = events.find((e) => e.type === 'page');
    assert.equal(page.name, 'Next Test');
    assert.equal(page.category, 'Docs');
    assert.equal(events.find((e) => e.type === 'group').groupId, 'next-org');
    // analytics-next sends the alias with the current user as userId and previousId.
    assert.equal(events.find((e) => e.type === 'alias').previousId, 'next-user-' + delivery);
  });
}
