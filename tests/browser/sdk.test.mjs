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

test('events queued offline when the tab closes are sent from the next page', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  await browser.context.setOffline(true);
  try {
    await tab.evaluate(() => analytics.track('Closed Offline'));
    await tab.close(); // pagehide runs while offline: no beacon
  } finally {
    await browser.context.setOffline(false);
  }
  await sleep(500);
  assert.equal(forAnon(anon).filter((e) => e.event === 'Closed Offline').length, 0);
  const next = await browser.context.newPage();
  await next.goto(site.base + '/plain.html');
  const ev = await waitFor(() => forAnon(anon).find((e) => e.event === 'Closed Offline'), 'the event from the closed tab');
  assert.equal(ev.type, 'track');
  await next.close();
});

test('leaving the page mid-batch loses nothing (and duplicates nothing)', async () => {
  const tab = await browser.context.newPage();
  await tab.goto(site.base + '/plain.html');
  await tab.waitForFunction(() => window.analytics && window.analytics.initialized);
  const anon = await tab.evaluate(() => analytics.user().anonymousId());
  // 45 events of ~2 KB: more than one 60 KB request, so the page leaves with a batch in flight
  // and more queued; pagehide must hand the rest to sendBeacon.
  await tab.evaluate((base) => {
    for (let i = 0; i < 45; i++) analytics.track('Burst', { i, pad: 'x'.repeat(1500) });
    location.href = base + '/other.html';
  }, site.base);
  await tab.waitForURL(site.base + '/other.html');
  const burst = await waitFor(() => {
    const b = forAnon(anon).filter((e) => e.event === 'Burst');
    return b.length >= 45 && b;
  }, 'all 45 events');
  await sleep(500);
  const final = forAnon(anon).filter((e) => e.event === 'Burst');
  assert.equal(final.length, 45);
  assert.deepEqual(final.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(45).keys()]);
  assert.equal(burst.length, 45);
  await tab.close();
});
