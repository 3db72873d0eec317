// First-event time in Chromium, side by side: a page with the snippet loads Switchyard's script
// for a source without device-mode destinations (today's bytes) and for a source with all ten
// integrations (their tags from a local stand-in server, consent granted), alternately; the time
// from navigation start to the first event's request to /v1/b is measured in the page
// (PerformanceResourceTiming). Prints the median and p90 of each over RUNS page loads.
//
// Usage: node bench/browser_first_event.mjs   (RUNS=20; SWITCHYARD_BIN as the browser tests)
// Needs tests/browser/node_modules (make test-deps) and Debian's chromium.
import { startSwitchyard, startStatic, launchChromium, snippet, WRITE_KEY, WRITE_KEY_2 } from '../tests/browser/harness.mjs';
import { startTagServer } from '../tests/browser/tags.mjs';

const RUNS = Number(process.env.RUNS || 20);
const tags = await startTagServer();
const d = (name, type, settings) => [
  `  - name: ${name}`,
  `    type: ${type}`,
  '    mode: device',
  '    sources: [other]',
  '    settings:',
  ...Object.entries(settings).map(([k, v]) => (typeof v == 'object' ? `      ${k}: ${JSON.stringify(v)}` : `      ${k}: '${v}'`)),
];
const t = tags.base;
const sy = await startSwitchyard({
  extra: [
    'destinations:',
    ...d('ga', 'ga4-gtag', { measurement_id: 'G-B', tag_url: `${t}/gtag.js?id={measurement_id}` }),
    ...d('ads', 'google-ads', { conversion_id: 'AW-1', tag_url: `${t}/gtag.js?id={conversion_id}` }),
    ...d('fb', 'meta-pixel', { pixel_id: '1', tag_url: `${t}/fbevents.js` }),
    ...d('tt', 'tiktok-pixel', { pixel_code: 'C', tag_url: `${t}/events.js` }),
    ...d('li', 'linkedin-insight', { partner_id: '1', tag_url: `${t}/insight.min.js` }),
    ...d('hj', 'hotjar', { site_id: '1', tag_url: `${t}/hotjar.js` }),
    ...d('ic', 'intercom', { app_id: 'a', tag_url: `${t}/intercom.js` }),
    ...d('hs', 'hubspot-tracking', { portal_id: '1', tag_url: `${t}/hs.js` }),
    ...d('mp', 'mixpanel-browser', { token: 't', tag_url: `${t}/mixpanel.js` }),
    ...d('amp', 'amplitude-browser', { api_key: 'k', tag_url: `${t}/amplitude.js` }),
  ],
});
const page = (key) => ({
  body: `<!doctype html><html><head><title>Bench</title><script>${snippet(sy.base, key)}</script></head><body></body></html>`,
});
const site = await startStatic({ '/alone.html': page(WRITE_KEY), '/ten.html': page(WRITE_KEY_2) });
const browser = await launchChromium();

async function once(path) {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + path);
  const handle = await tab.waitForFunction(() => {
    const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/v1/b'));
    return e && e.startTime;
  });
  const ms = await handle.jsonValue();
  await tab.close();
  return ms;
}

const results = { alone: [], ten: [] };
await once('/alone.html'); // warm-up: the browser's first start
for (let i = 0; i < RUNS; i++) {
  results.alone.push(await once('/alone.html'));
  results.ten.push(await once('/ten.html'));
}
const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
console.log('first event request after navigation start, ms (the batch timer is 500 ms of it)');
for (const [name, xs] of Object.entries(results))
  console.log(`${name === 'alone' ? 'library alone  ' : 'ten integrations'}  median ${q(xs, 0.5).toFixed(1)}  p90 ${q(xs, 0.9).toFixed(1)}  (n=${xs.length})`);
await browser.close();
await site.close();
await sy.stop();
await tags.close();
