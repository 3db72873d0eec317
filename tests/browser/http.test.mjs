// HTTP behaviour of the browser endpoints on the real server: caching headers, ETag/304, gzip,
// unknown write keys, CORS (from Node and from a page of another origin in Chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { startSwitchyard, startStatic, launchChromium, WRITE_KEY, WRITE_KEY_2 } from './harness.mjs';

let sy;
const SETTINGS = `/v1/projects/${WRITE_KEY}/settings`;
const SCRIPT = `/analytics.js/v1/${WRITE_KEY}/analytics.min.js`;

before(async () => {
  sy = await startSwitchyard({ web: { cache_max_age: '90s', public_api_host: 'events.example.test/v1' } });
});
after(async () => {
  await sy?.stop();
});

// A raw GET (fetch would decompress and hide Content-Encoding).
function get(server, path, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('settings: a Segment settings document pointing back at the configured apiHost', async () => {
  const r = await get(sy, SETTINGS);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/json/);
  const doc = JSON.parse(r.body);
  assert.equal(doc.integrations['Segment.io'].apiKey, WRITE_KEY);
  assert.equal(doc.integrations['Segment.io'].apiHost, 'events.example.test/v1');
  assert.equal(doc.integrations['Segment.io'].protocol, 'http');
  assert.deepEqual(Object.keys(doc.integrations), ['Segment.io']);
  assert.equal(doc.plan.track.__default.enabled, true);
  const other = JSON.parse((await get(sy, `/v1/projects/${WRITE_KEY_2}/settings`)).body);
  assert.equal(other.integrations['Segment.io'].apiKey, WRITE_KEY_2, 'settings are per source');
});

test('script: the library with the settings inlined', async () => {
  const r = await get(sy, SCRIPT);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/javascript/);
  const settings = (await get(sy, SETTINGS)).body.toString();
  assert.ok(r.body.toString().includes(settings));
  assert.ok(!r.body.toString().includes('@@SWITCHYARD_SETTINGS@@'));
});

for (const path of [SETTINGS, SCRIPT]) {
  test(`${path}: Cache-Control from web.cache_max_age, strong ETag, 304 on If-None-Match`, async () => {
    const r = await get(sy, path);
    assert.equal(r.headers['cache-control'], 'public, max-age=90');
    const etag = r.headers.etag;
    assert.match(etag, /^"[^"]+"$/, 'a strong ETag');
    const again = await get(sy, path, { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, etag);
    assert.equal(again.headers['cache-control'], 'public, max-age=90');
    assert.equal((await get(sy, path, { 'If-None-Match': '"stale"' })).status, 200);
  });

  test(`${path}: gzip when accepted, identical bytes once decompressed, at most 10 KB for the script`, async () => {
    const plain = await get(sy, path);
    const gz = await get(sy, path, { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.match(gz.headers.vary, /Accept-Encoding/);
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    assert.notEqual(gz.headers.etag, plain.headers.etag);
    assert.equal((await get(sy, path, { 'Accept-Encoding': 'gzip', 'If-None-Match': gz.headers.etag })).status, 304);
    if (path === SCRIPT) assert.ok(gz.body.length <= 10 * 1024, `script is ${gz.body.length} bytes gzipped`);
  });
}

test('unknown write key: 404 on both endpoints', async () => {
  for (const path of ['/v1/projects/wk_nobody/settings', '/analytics.js/v1/wk_nobody/analytics.min.js']) {
    const r = await get(sy, path);
    assert.equal(r.status, 404, path);
    assert.equal(JSON.parse(r.body).error, 'unknown_write_key');
  }
});

test('CORS: both endpoints answer cross-origin; the preflight allows Authorization and Content-Type', async () => {
  for (const path of [SETTINGS, SCRIPT]) {
    const r = await get(sy, path, { Origin: 'https://shop.example' });
    assert.ok(['*', 'https://shop.example'].includes(r.headers['access-control-allow-origin']), path);
  }
  const pre = await get(
    sy,
    '/v1/t',
    { Origin: 'https://shop.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    'OPTIONS',
  );
  assert.ok(pre.status === 204 || pre.status === 200);
  assert.match(pre.headers['access-control-allow-headers'].toLowerCase(), /authorization/);
  assert.match(pre.headers['access-control-allow-headers'].toLowerCase(), /content-type/);
  assert.match(pre.headers['access-control-allow-methods'], /POST/);
});

test('a page of another origin in Chromium reads the settings cross-origin and revalidates with 304', async () => {
  const site = await startStatic({ '/x.html': { body: '<!doctype html><title>x</title>' } });
  const browser = await launchChromium();
  try {
    const tab = await browser.context.newPage();
    // The raw status on the wire, from DevTools (scripts and playwright see the revalidated 200).
    const statuses = [];
    const cdp = await browser.context.newCDPSession(tab);
    await cdp.send('Network.enable');
    cdp.on('Network.responseReceivedExtraInfo', (e) => (e.headers.ETag || e.headers.etag) && statuses.push(e.statusCode));
    await tab.goto(site.base + '/x.html');
    const url = sy.base + SETTINGS;
    const first = await tab.evaluate(async (u) => (await fetch(u)).json(), url);
    assert.equal(first.integrations['Segment.io'].apiKey, WRITE_KEY);
    // no-cache: the browser must revalidate with its ETag; the server answers 304.
    const second = await tab.evaluate(async (u) => {
      const r = await fetch(u, { cache: 'no-cache' });
      return { status: r.status, body: await r.json() };
    }, url);
    assert.equal(second.status, 200, 'a 304 is shown to scripts as the cached 200');
    assert.deepEqual(second.body, first);
    // DevTools reports the wire status in its own event, which may arrive after fetch resolved.
    for (let i = 0; i < 100 && statuses.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(statuses, [200, 304]);
  } finally {
    await browser.close();
    await site.close();
  }
});

test('a settings change reaches clients through a new ETag, with no invalidation step', async () => {
  const before = await get(sy, SETTINGS);
  const changed = await startSwitchyard({ web: { cache_max_age: '90s', public_api_host: 'https://events2.example.test/v1' } });
  try {
    const r = await get(changed, SETTINGS, { 'If-None-Match': before.headers.etag });
    assert.equal(r.status, 200);
    assert.notEqual(r.headers.etag, before.headers.etag);
    const seg = JSON.parse(r.body).integrations['Segment.io'];
    assert.equal(seg.apiHost, 'events2.example.test/v1');
    assert.equal(seg.protocol, 'https');
  } finally {
    await changed.stop();
  }
});
