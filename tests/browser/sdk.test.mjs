// Switchyard's own browser library in headless Chromium, loaded by the documented snippet from
// the real server, on a page of another origin. Events are checked in `switchyard dump`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSwitchyard, startStatic, launchChromium, snippet, waitFor, sleep, WRITE_KEY } from './harness.mjs';

let sy, site, browser;

const page = (body, title = 'Test Page') => ({
  body: `<!doctype html><html><head><title>${title}</title><script>${snippet(sy.base)}</script></head><body>${body}</body></html>`,
});

before(async () => {
  sy = await startSwitchyard();
  site = await startStatic({
    '/shop/index.html': page(`<script>
      // Made before the library is loaded: they are queued by the snippet.
      analytics.track('Queued Before Load', { n: 1 });
      analytics.identify('user-42', { email: 'ada@example.com', plan: 'pro' });
      analytics.group('org-7', { name: 'Acme' });
      analytics.alias('user-42-new');
      analytics.ready(function () { window.syReady = true; });
    </script>`, 'Shop Home'),
    '/plain.html': page(''),
    '/other.html': { body: '<!doctype html><title>Other</title>' },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await sy?.stop();
});

const byType = (events, type) => events.filter((e) => e.type === type);
const forAnon = (anon) => sy.dump('web').filter((e) => e.anonymousId === anon);

test('snippet calls made before load land with context and ids; page() from the snippet too', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/shop/index.html?utm_source=newsletter&utm_campaign=spring&utm_medium=email');
  await tab.waitForFunction(() => window.syReady === true);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  assert.match(anon, /^[0-9a-f-]{36}$/);
  await tab.evaluate(() => analytics.track('After Load', { price: 9.5 }));
  const events = await waitFor(() => {
    const ev = forAnon(anon);
    return ev.length >= 6 && ev;
  }, 'six events from the snippet page');
  assert.deepEqual(events.map((e) => e.type).sort(), ['alias', 'group', 'identify', 'page', 'track', 'track']);
  const [pageEv] = byType(events, 'page');
  assert.equal(pageEv.context.page.path, '/shop/index.html');
  assert.equal(pageEv.context.page.title, 'Shop Home');
  assert.equal(pageEv.context.page.url, site.base + '/shop/index.html?utm_source=newsletter&utm_campaign=spring&utm_medium=email');
  assert.equal(pageEv.context.page.search, '?utm_source=newsletter&utm_campaign=spring&utm_medium=email');
  assert.equal(pageEv.properties.path, '/shop/index.html');
  for (const e of events) {
    assert.equal(e.context.library.name, 'analytics.js-switchyard');
    assert.match(e.context.library.version, /^\d+\.\d+\.\d+$/);
    assert.match(e.context.userAgent, /Chrome/);
    assert.ok(e.context.locale, 'locale');
    assert.ok(e.context.timezone, 'timezone');
    assert.deepEqual(e.context.campaign, { source: 'newsletter', name: 'spring', medium: 'email' });
    assert.equal(e.context.ip, '127.0.0.1');
    assert.ok(e.messageId && e.receivedAt && e.sentAt && e.timestamp);
  }
  const queued = events.find((e) => e.event === 'Queued Before Load');
  assert.deepEqual(queued.properties, { n: 1 });
  assert.equal(queued.userId, undefined, 'tracked before identify');
  const identify = byType(events, 'identify')[0];
  assert.equal(identify.userId, 'user-42');
  assert.deepEqual(identify.traits, { email: 'ada@example.com', plan: 'pro' });
  const group = byType(events, 'group')[0];
  assert.equal(group.groupId, 'org-7');
  assert.equal(group.userId, 'user-42');
  assert.deepEqual(group.traits, { name: 'Acme' });
  const alias = byType(events, 'alias')[0];
  assert.equal(alias.userId, 'user-42-new');
  assert.equal(alias.previousId, 'user-42');
  const afterLoad = events.find((e) => e.event === 'After Load');
  assert.equal(afterLoad.userId, 'user-42');
  assert.deepEqual(afterLoad.properties, { price: 9.5 });
  // Traits are persisted; user() reads them back.
  assert.deepEqual(await tab.evaluate(() => analytics.user().traits()), { email: 'ada@example.com', plan: 'pro' });
  await tab.close();
});

test('the anonymousId is a first-party cookie mirrored in localStorage and survives a reload', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  const cookies = await browser.context.cookies(site.base);
  const cookie = cookies.find((c) => c.name === 'ajs_anonymous_id');
  assert.ok(cookie, 'ajs_anonymous_id cookie');
  assert.equal(cookie.value, anon);
  assert.equal(cookie.sameSite, 'Lax');
  const days = (cookie.expires * 1000 - Date.now()) / 86400e3;
  assert.ok(days > 364 && days <= 366, `cookie lifetime ${days} days`);
  assert.equal(await tab.evaluate(() => localStorage.getItem('ajs_anonymous_id')), anon);
  await tab.reload();
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  assert.equal(await tab.evaluate(() => analytics.user().anonymousId()), anon);
  // localStorage lost: the cookie still carries the id.
  await tab.evaluate(() => localStorage.removeItem('ajs_anonymous_id'));
  await tab.reload();
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  assert.equal(await tab.evaluate(() => analytics.user().anonymousId()), anon);
  const pages = await waitFor(() => {
    const p = byType(forAnon(anon), 'page');
    return p.length >= 3 && p;
  }, 'three page events with one anonymousId');
  assert.equal(pages.length, 3);
  // setAnonymousId and reset.
  await tab.evaluate(() => analytics.setAnonymousId('anon-fixed'));
  assert.equal(await tab.evaluate(() => analytics.user().anonymousId()), 'anon-fixed');
  await tab.evaluate(() => analytics.identify('u-reset'));
  await tab.evaluate(() => analytics.reset());
  const afterReset = await tab.evaluate(() => [analytics.user().id(), analytics.user().anonymousId()]);
  assert.equal(afterReset[0], null);
  assert.notEqual(afterReset[1], 'anon-fixed');
  await tab.close();
});

test('source middleware can change and drop events', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => {
    analytics.addSourceMiddleware(({ payload, next }) => {
      if (payload.obj.event === 'Secret') return next(null);
      payload.obj.properties = Object.assign({}, payload.obj.properties, { enriched: true });
      next(payload);
    });
    analytics.track('Secret');
    analytics.track('Public');
    return analytics.user().anonymousId();
  });
  const ev = await waitFor(() => forAnon(anon).find((e) => e.event === 'Public'), 'the Public event');
  assert.equal(ev.properties.enriched, true);
  await sleep(300);
  assert.equal(forAnon(anon).filter((e) => e.event === 'Secret').length, 0);
  await tab.close();
});

test('events made offline arrive once the network returns', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  const offline = () => forAnon(anon).filter((e) => /^Offline /.test(e.event || ''));
  await browser.context.setOffline(true);
  try {
    await tab.evaluate(() => ['Offline 1', 'Offline 2', 'Offline 3'].forEach((e) => analytics.track(e)));
    await sleep(1500);
    assert.equal(offline().length, 0, 'nothing can arrive while offline');
    const persisted = await tab.evaluate((wk) => JSON.parse(localStorage.getItem('sy:queue:' + wk)).length, WRITE_KEY);
    assert.ok(persisted >= 3, `persisted queue holds ${persisted}`);
  } finally {
    await browser.context.setOffline(false);
  }
  const tracks = await waitFor(() => {
    const t = offline();
    return t.length >= 3 && t;
  }, 'the offline events');
  assert.deepEqual(tracks.map((e) => e.event).sort(), ['Offline 1', 'Offline 2', 'Offline 3']);
  await tab.close();
});

test('events queued offline when the tab closes are not lost (persisted, sent later)', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  await browser.context.setOffline(true);
  try {
    await tab.evaluate(() => analytics.track('Closed Offline'));
    const queued = await tab.evaluate((wk) => localStorage.getItem('sy:queue:' + wk), WRITE_KEY);
    assert.match(queued, /Closed Offline/, 'persisted in localStorage');
    await tab.close(); // pagehide runs while offline: no beacon
  } finally {
    await browser.context.setOffline(false);
  }
  // The next page of the site sends it (unless the closing tab's beacon already did, when the
  // browser came back online before the tab was gone: then the next page must not send it again).
  const next = await browser.context.newPage();
  await next.goto(site.base + '/plain.html');
  await waitFor(() => forAnon(anon).find((e) => e.event === 'Closed Offline'), 'the event from the closed tab');
  await next.waitForFunction((wk) => !/Closed Offline/.test(localStorage.getItem('sy:queue:' + wk) || ''), WRITE_KEY);
  assert.equal(forAnon(anon).filter((e) => e.event === 'Closed Offline').length, 1);
  await next.close();
});

test('pagehide hands the queued events to sendBeacon', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  // Fewer than a batch and well within the flush interval: only the beacon can carry them, as
  // the next page (other.html) has no snippet.
  await tab.evaluate((base) => {
    for (let i = 0; i < 10; i++) analytics.track('Beaconed', { i });
    location.href = base + '/other.html';
  }, site.base);
  await tab.waitForURL(site.base + '/other.html');
  const got = await waitFor(() => {
    const b = forAnon(anon).filter((e) => e.event === 'Beaconed');
    return b.length >= 10 && b;
  }, 'the 10 beaconed events');
  assert.deepEqual(got.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(10).keys()]);
  await tab.close();
});

test('leaving the page mid-batch loses nothing (and duplicates nothing)', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  // 45 events of ~2 KB: more than one 60 KB request and more than the browser's 64 KB budget for
  // requests that outlive a page. The page leaves with a batch in flight and more queued: what
  // neither keepalive nor the beacon carries stays in localStorage and the next page sends it.
  await tab.evaluate((base) => {
    for (let i = 0; i < 45; i++) analytics.track('Burst', { i, pad: 'x'.repeat(1500) });
    location.href = base + '/plain.html?next';
  }, site.base);
  await tab.waitForURL(site.base + '/plain.html?next');
  await waitFor(() => forAnon(anon).filter((e) => e.event === 'Burst').length >= 45, 'all 45 events');
  await sleep(700);
  const final = forAnon(anon).filter((e) => e.event === 'Burst');
  assert.equal(final.length, 45, 'stored exactly once each');
  assert.deepEqual(final.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(45).keys()]);
  await tab.close();
});

test('503 and 429 are retried after Retry-After; a 400 drops the batch', async () => {
  const tab = await browser.context.newPage();
  const answers = [
    { status: 503, headers: { 'Retry-After': '1' } },
    { status: 429, headers: { 'Retry-After': '1' } },
  ];
  // A cross-origin script reads Retry-After only when the response exposes it.
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Retry-After' };
  const seen = [];
  await tab.route(sy.base + '/v1/b', async (route) => {
    const body = JSON.parse(route.request().postData());
    const names = body.batch.map((e) => e.event);
    seen.push({ at: Date.now(), names });
    if (names.includes('Refused')) return route.fulfill({ status: 400, body: '{}' });
    const a = names.includes('Retried') && answers.shift();
    if (a) return route.fulfill({ ...a, body: '{}', headers: { ...a.headers, ...cors } });
    return route.continue();
  });
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  await sleep(700); // the page event goes out alone
  const anon = await tab.evaluate(() => {
    analytics.track('Refused');
    return analytics.user().anonymousId();
  });
  await waitFor(() => seen.some((s) => s.names.includes('Refused')), 'the refused batch');
  await tab.evaluate(() => analytics.track('Retried'));
  const ev = await waitFor(() => forAnon(anon).find((e) => e.event === 'Retried'), 'the retried event', 15000);
  assert.ok(ev);
  const tries = seen.filter((s) => s.names.includes('Retried'));
  assert.equal(tries.length, 3, 'two refusals then success');
  assert.ok(tries[1].at - tries[0].at >= 900, `Retry-After honoured (${tries[1].at - tries[0].at} ms)`);
  assert.ok(tries[2].at - tries[1].at >= 900, `Retry-After honoured (${tries[2].at - tries[1].at} ms)`);
  assert.equal(seen.filter((s) => s.names.includes('Refused')).length, 1, 'a 400 is not retried');
  assert.equal(forAnon(anon).filter((e) => e.event === 'Refused').length, 0);
  await tab.close();
});
