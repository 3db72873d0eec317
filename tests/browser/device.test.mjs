// Device mode in Chromium: the real server's per-source script loads the stand-in vendor tags
// (tags.mjs) of the destinations enabled for the source, queues calls until each tag has run, and
// maps every Segment call to the vendor's API; a broken or missing tag harms nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSwitchyard, startStatic, launchChromium, snippet, waitFor, WRITE_KEY, WRITE_KEY_2 } from './harness.mjs';
import { startTagServer } from './tags.mjs';

let sy, site, browser, tags;

// Every device-only type on source `web` (tags held 1 s, so the page's first calls are made
// before any tag has run); a broken, a missing and a working tag on source `other`.
function destinations(t) {
  const d = (name, type, sources, settings) => [
    `  - name: ${name}`,
    `    type: ${type}`,
    '    mode: device',
    `    sources: [${sources}]`,
    '    settings:',
    ...Object.entries(settings).map(([k, v]) =>
      typeof v == 'object' ? `      ${k}: ${JSON.stringify(v)}` : `      ${k}: '${v}'`,
    ),
  ];
  return [
    'destinations:',
    ...d('ga', 'ga4-gtag', 'web', { measurement_id: 'G-TEST', tag_url: `${t}/gtag.js?id={measurement_id}&delay=1000` }),
    ...d('ads', 'google-ads', 'web', {
      conversion_id: 'AW-1',
      conversions: { 'Order Completed': 'purchase-label' },
      tag_url: `${t}/gtag.js?id={conversion_id}&delay=1000`,
    }),
    ...d('fb', 'meta-pixel', 'web', { pixel_id: '1234', tag_url: `${t}/fbevents.js?delay=1000` }),
    ...d('tt', 'tiktok-pixel', 'web', { pixel_code: 'CTEST', tag_url: `${t}/events.js?sdkid={pixel_code}&lib=ttq&delay=1000` }),
    ...d('li', 'linkedin-insight', 'web', {
      partner_id: '555',
      conversions: { 'Order Completed': '777' },
      tag_url: `${t}/insight.min.js?delay=1000`,
    }),
    ...d('hj', 'hotjar', 'web', { site_id: '42', tag_url: `${t}/hotjar.js?id={site_id}&delay=1000` }),
    ...d('ic', 'intercom-messenger', 'web', { app_id: 'abc', tag_url: `${t}/intercom.js?app={app_id}&delay=1000` }),
    ...d('hs', 'hubspot-tracking', 'web', { portal_id: '999', tag_url: `${t}/hs.js?portal={portal_id}&delay=1000` }),
    ...d('mp', 'mixpanel-browser', 'web', { token: 'tok', tag_url: `${t}/mixpanel.js?delay=1000` }),
    ...d('amp', 'amplitude-browser', 'web', { api_key: 'key1', tag_url: `${t}/amplitude.js?delay=1000` }),
    ...d('broken', 'meta-pixel', 'other', { pixel_id: '1', tag_url: `${t}/fbevents.js?throw=1` }),
    ...d('missing', 'tiktok-pixel', 'other', { pixel_code: 'X', tag_url: `${t}/nope.js` }),
    ...d('fine', 'hotjar', 'other', { site_id: '7', tag_url: `${t}/hotjar.js?id={site_id}` }),
  ];
}

const html = (key, body) => ({
  body: `<!doctype html><html><head><title>Device</title><script>${snippet(sy.base, key)}</script></head><body>${body}</body></html>`,
});

before(async () => {
  tags = await startTagServer();
  sy = await startSwitchyard({ extra: destinations(tags.base) });
  site = await startStatic({
    '/device.html': html(
      WRITE_KEY,
      `<script>
        analytics.identify('u1', { email: 'ada@example.com', name: 'Ada' });
        analytics.track('Order Completed', { order_id: 'o1', revenue: 25, currency: 'EUR',
          products: [{ product_id: 'p1', name: 'Pen', price: 25, quantity: 1 }] });
        analytics.group('org-1', { name: 'Acme' });
        analytics.track('Custom Thing', { a: 1 });
      </script>`,
    ),
    '/plain.html': html(WRITE_KEY, ''),
    '/broken.html': html(
      WRITE_KEY_2,
      `<script>
        analytics.track('Still Works', { n: 1 });
        window.laterScriptRan = true;
      </script>`,
    ),
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
const find = (list, method, first) => list.filter((c) => c[0] == method && (first === undefined || c[1] === first));
const ALL = ['ga', 'ads', 'fb', 'tt', 'li', 'hj', 'ic', 'hs', 'mp', 'amp'];

async function openDevicePage() {
  const tab = await browser.context.newPage();
  const warnings = [];
  tab.on('console', (m) => m.type() == 'warning' && warnings.push(m.text()));
  // Not waiting for the load event: it waits for the tags too.
  await tab.goto(site.base + '/device.html', { waitUntil: 'commit' });
  // Calls made before the tags arrived are queued (the tags are held 1 s).
  const early = await tab.waitForFunction(() => window.analytics && analytics.debugView && analytics.debugView());
  const view = await early.jsonValue();
  await waitFor(
    () => tab.evaluate((names) => names.every((n) => analytics.debugView().integrations[n].state == 'ready'), ALL),
    'every tag ready',
  );
  return { tab, view, warnings };
}

test('each vendor tag loads for its source and receives the mapped calls, queued ones included', async () => {
  const { tab, view, warnings } = await openDevicePage();
  for (const n of ALL) {
    assert.equal(view.integrations[n].state, 'loading', n);
    assert.ok(view.integrations[n].queued >= 1, `${n} queued calls before its tag ran`);
  }
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  const server = await waitFor(() => {
    const ev = sy.dump('web').filter((e) => e.anonymousId === anon);
    return ev.length >= 5 && ev;
  }, 'events at Switchyard too');
  const order = server.find((e) => e.event === 'Order Completed');

  const gtag = await calls(tab, 'gtag');
  assert.deepEqual(find(gtag, 'config', 'G-TEST'), [['config', 'G-TEST', { send_page_view: false }]]);
  assert.deepEqual(find(gtag, 'config', 'AW-1'), [['config', 'AW-1', { send_page_view: false }]]);
  const ga = gtag.filter((c) => c[0] == 'event' && c[2].send_to == 'G-TEST');
  assert.deepEqual(ga.map((c) => c[1]), ['page_view', 'purchase', 'custom_thing']);
  assert.equal(ga[0][2].page_path, '/device.html');
  assert.deepEqual(ga[1][2], {
    currency: 'EUR',
    value: 25,
    transaction_id: 'o1',
    items: [{ item_id: 'p1', item_name: 'Pen', price: 25, quantity: 1 }],
    send_to: 'G-TEST',
  });
  assert.deepEqual(find(gtag, 'set'), [['set', { user_id: 'u1' }], ['set', 'user_properties', { email: 'ada@example.com', name: 'Ada' }]]);
  assert.deepEqual(find(gtag, 'event', 'conversion'), [
    ['event', 'conversion', { send_to: 'AW-1/purchase-label', value: 25, currency: 'EUR', transaction_id: 'o1' }],
  ]);

  const fbq = await calls(tab, 'fbq');
  assert.deepEqual(fbq[0], ['init', '1234']);
  assert.deepEqual(find(fbq, 'init')[1], ['init', '1234', { em: 'ada@example.com', external_id: 'u1' }]);
  const purchase = find(fbq, 'track', 'Purchase')[0];
  assert.equal(purchase[2].value, 25);
  assert.deepEqual(purchase[2].content_ids, ['p1']);
  // The Conversions API's event_id: Meta keeps one copy when both send.
  assert.deepEqual(purchase[3], { eventID: order.messageId });
  assert.equal(find(fbq, 'track', 'PageView').length, 1);
  assert.deepEqual(find(fbq, 'trackCustom')[0].slice(1, 3), ['Custom Thing', { a: 1 }]);

  const ttq = await calls(tab, 'ttq');
  assert.deepEqual(ttq[0], ['load', ['CTEST']]);
  assert.deepEqual(ttq.slice(1).map((c) => c[0]), ['page', 'identify', 'track', 'track']);
  assert.deepEqual(find(ttq, 'identify')[0][1], { email: 'ada@example.com', external_id: 'u1' });
  assert.equal(find(ttq, 'track', 'CompletePayment')[0][3].event_id, order.messageId);

  assert.deepEqual(await calls(tab, 'lintrk'), [['load', '555', ['555']], ['track', { conversion_id: 777 }]]);

  const hj = await calls(tab, 'hj');
  assert.deepEqual(hj[0], ['load', { hjid: 42, hjsv: 6 }]);
  assert.deepEqual(hj.slice(1).map((c) => c.slice(0, 2)), [
    ['stateChange', site.base + '/device.html'],
    ['identify', 'u1'],
    ['event', 'Order Completed'],
    ['event', 'Custom Thing'],
  ]);
  assert.deepEqual(find(hj, 'identify')[0][2], { email: 'ada@example.com', name: 'Ada' });

  const ic = await calls(tab, 'Intercom');
  assert.deepEqual(ic[0], ['load', { app_id: 'abc' }]);
  assert.deepEqual(ic[1], ['boot', { app_id: 'abc', user_id: 'u1', email: 'ada@example.com', name: 'Ada' }]);
  assert.deepEqual(find(ic, 'trackEvent').map((c) => c[1]), ['Order Completed', 'Custom Thing']);
  assert.deepEqual(find(ic, 'update').at(-1), ['update', { company: { company_id: 'org-1', name: 'Acme' } }]);

  const hs = await calls(tab, '_hsq');
  assert.deepEqual(hs.slice(0, 3), [['setPath', '/device.html'], ['trackPageView'], ['identify', { email: 'ada@example.com', name: 'Ada', id: 'u1' }]]);
  assert.deepEqual(find(hs, 'trackCustomBehavioralEvent')[1], ['trackCustomBehavioralEvent', { name: 'Custom Thing', properties: { a: 1 } }]);

  const mp = await calls(tab, 'mixpanel');
  assert.deepEqual(mp[0], ['init', 'tok', { track_pageview: false }, 'mixpanel']);
  assert.deepEqual(mp.slice(1).map((c) => c[0]), ['track_pageview', 'identify', 'people.set', 'track', 'set_group', 'track']);
  assert.deepEqual(find(mp, 'set_group')[0], ['set_group', 'company', 'org-1']);

  const amp = await calls(tab, 'amplitude');
  assert.deepEqual(amp[0], ['init', 'key1', { autocapture: false }]);
  assert.deepEqual(amp.slice(1).map((c) => c[0]), ['track', 'setUserId', 'identify', 'track', 'setGroup', 'track']);
  assert.deepEqual(find(amp, 'identify')[0], ['identify', { email: 'ada@example.com', name: 'Ada' }]);

  const debug = await tab.evaluate(() => analytics.debugView());
  for (const n of ALL) assert.equal(debug.integrations[n].errors, 0, n);
  assert.deepEqual(warnings, []);
  await tab.close();
});

test("a call's integrations object switches a tag off by name, display name or All", async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await waitFor(() => tab.evaluate(() => window.analytics && analytics.debugView && analytics.debugView().integrations.mp.state == 'ready'), 'mixpanel ready');
  await waitFor(() => tab.evaluate(() => analytics.debugView().integrations.hj.state == 'ready'), 'hotjar ready');
  await tab.evaluate(() => {
    analytics.track('Not For Hotjar', {}, { integrations: { Hotjar: false } });
    analytics.track('Not For mp', {}, { integrations: { mp: false } });
    analytics.track('Only mp', {}, { integrations: { All: false, mp: true } });
  });
  const hj = (await calls(tab, 'hj')).filter((c) => c[0] == 'event').map((c) => c[1]);
  const mp = (await calls(tab, 'mixpanel')).filter((c) => c[0] == 'track').map((c) => c[1]);
  assert.deepEqual(hj, ['Not For mp']);
  assert.deepEqual(mp, ['Not For Hotjar', 'Only mp']);
  await tab.close();
});

test('a throwing or missing tag breaks neither the page, the other tags nor delivery', async () => {
  const tab = await browser.context.newPage();
  const warnings = [];
  tab.on('console', (m) => m.type() == 'warning' && warnings.push(m.text()));
  await tab.goto(site.base + '/broken.html');
  await waitFor(() => tab.evaluate(() => {
    const v = window.analytics && analytics.debugView && analytics.debugView().integrations;
    return v && v.broken.state == 'failed' && v.missing.state == 'failed' && v.fine.state == 'ready';
  }), 'the broken and missing tags failed, the fine one ran');
  assert.equal(await tab.evaluate(() => window.laterScriptRan), true);
  const view = await tab.evaluate(() => analytics.debugView().integrations);
  assert.ok(view.broken.errors >= 1 && view.missing.errors >= 1);
  assert.ok(view.broken.dropped >= 1, 'its queued calls are counted as dropped');
  assert.equal(view.fine.errors, 0);
  // Only the source's own tags were requested (not the `web` source's).
  assert.equal(tags.requested('/nope.js').length, 1);
  assert.equal(tags.requested('throw=1').length, 1);
  assert.deepEqual((await calls(tab, 'hj')).map((c) => c[0]), ['load', 'stateChange', 'event']);
  assert.ok(warnings.some((w) => w.includes('broken') && w.includes('did not start')), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('missing') && w.includes('did not load')), warnings.join('\n'));
  // Later calls keep reaching Switchyard and the working tag.
  await tab.evaluate(() => analytics.track('After Failure'));
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  await waitFor(() => {
    const names = sy.dump('other').filter((e) => e.anonymousId === anon).map((e) => e.event);
    return names.includes('Still Works') && names.includes('After Failure');
  }, 'events at Switchyard');
  assert.deepEqual((await calls(tab, 'hj')).filter((c) => c[0] == 'event').map((c) => c[1]), ['Still Works', 'After Failure']);
  await tab.close();
});

test("each source's documents carry only its own device-mode destinations", async () => {
  // `web` has ten integrations; the settings document of each source lists only its own.
  const web = await (await fetch(`${sy.base}/v1/projects/${WRITE_KEY}/settings`)).json();
  const other = await (await fetch(`${sy.base}/v1/projects/${WRITE_KEY_2}/settings`)).json();
  assert.deepEqual(Object.keys(web.integrations).sort(), ['Segment.io', ...ALL].sort());
  assert.deepEqual(Object.keys(other.integrations).sort(), ['Segment.io', 'broken', 'fine', 'missing']);
  const script = await (await fetch(`${sy.base}/analytics.js/v1/${WRITE_KEY_2}/analytics.min.js`)).text();
  assert.ok(script.includes('_hjSettings') && script.includes('fbq') && script.includes('ttq'));
  assert.ok(!script.includes('mixpanel') && !script.includes('google_tag_manager'));
});
