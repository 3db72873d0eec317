// Stand-ins for the vendors' browser tags, served by a local HTTP server (127.0.0.1, port 0).
// Each script implements the global API the vendor documents for its tag (gtag/dataLayer, fbq,
// ttq, lintrk, hj, Intercom, _hsq, mixpanel, amplitude) and records every call in the page as
// window.__tagCalls: [vendor, method, ...arguments] entries, arguments JSON-cloned. Like the real
// tags, each takes over the queue its base code left (dataLayer, fbq.queue, ttq, hj.q, _hsq,
// mixpanel._i) and records those calls too.
//
// Query parameters of any script: throw=1 makes it throw before defining anything (a broken tag);
// delay=<ms> holds the response (calls made meanwhile must be queued by the library). Any other
// path is a 404. The server logs every request (`requests`: paths with their query), so a test
// can tell a tag that was never requested from one that was.
import { createServer } from 'node:http';

// Shared by every stand-in: the recorder.
const RECORD = `
  var rec = function (vendor, method, args) {
    var a = [];
    for (var i = 0; i < args.length; i++) {
      var v = args[i];
      a.push(v === undefined ? null : JSON.parse(JSON.stringify(v)));
    }
    (window.__tagCalls = window.__tagCalls || []).push([vendor, method].concat(a));
  };
  (window.__tagLoads = window.__tagLoads || []).push(document.currentScript && document.currentScript.src);
`;

const TAGS = {
  // gtag.js: processes dataLayer (Arguments objects) and every later push; google_tag_manager
  // says it ran. A second load (GA4 and Google Ads) only marks itself, as gtag.js does.
  '/gtag.js': `
    if (!window.google_tag_manager) {
      window.google_tag_manager = {};
      var dl = (window.dataLayer = window.dataLayer || []);
      var seen = function (e) { if (e && typeof e.length == 'number' && typeof e[0] == 'string') rec('gtag', e[0], Array.prototype.slice.call(e, 1)); };
      for (var i = 0; i < dl.length; i++) seen(dl[i]);
      dl.push = function () { for (var j = 0; j < arguments.length; j++) { Array.prototype.push.call(dl, arguments[j]); seen(arguments[j]); } return dl.length; };
    }`,
  // fbevents.js: fbq.callMethod takes over the base code's queue.
  '/fbevents.js': `
    var f = window.fbq;
    f.callMethod = function () { rec('fbq', arguments[0], Array.prototype.slice.call(arguments, 1)); };
    var q = f.queue || []; f.queue = [];
    for (var i = 0; i < q.length; i++) f.callMethod.apply(f, q[i]);`,
  // events.js: reads the ttq queue and the pixel's load record, then serves the methods.
  '/events.js': `
    var t = window.ttq, q = t.slice(0);
    t.length = 0;
    rec('ttq', 'load', [Object.keys(t._i || {})]);
    ['page', 'track', 'identify'].forEach(function (m) { t[m] = function () { rec('ttq', m, arguments); }; });
    for (var i = 0; i < q.length; i++) t[q[i][0]].apply(t, q[i].slice(1));`,
  // insight.min.js: lintrk, and the partner ID the page declared.
  '/insight.min.js': `
    rec('lintrk', 'load', [window._linkedin_partner_id, window._linkedin_data_partner_ids]);
    window.lintrk = function () { rec('lintrk', arguments[0], Array.prototype.slice.call(arguments, 1)); };`,
  // hotjar-<id>.js: _hjSettings, then hj.q and later calls.
  '/hotjar.js': `
    rec('hj', 'load', [window._hjSettings]);
    var q = (window.hj && window.hj.q) || [];
    window.hj = function () { rec('hj', arguments[0], Array.prototype.slice.call(arguments, 1)); };
    for (var i = 0; i < q.length; i++) window.hj.apply(null, q[i]);`,
  // widget/<app_id>: Intercom(method, ...).
  '/intercom.js': `
    rec('Intercom', 'load', [window.intercomSettings]);
    window.Intercom = function () { rec('Intercom', arguments[0], Array.prototype.slice.call(arguments, 1)); };`,
  // hs-scripts <portal>.js: takes over _hsq.
  '/hs.js': `
    var q = window._hsq || [];
    window._hsq = { push: function (c) { rec('_hsq', c[0], c.slice(1)); } };
    for (var i = 0; i < q.length; i++) window._hsq.push(q[i]);`,
  // mixpanel-2-latest.min.js: replaces the snippet's stub with the library, initialised from _i.
  '/mixpanel.js': `
    var stub = window.mixpanel || {}, inits = stub._i || [];
    var mp = { __loaded: false, people: { set: function () { rec('mixpanel', 'people.set', arguments); } } };
    ['init', 'track', 'identify', 'track_pageview', 'set_group', 'register'].forEach(function (m) {
      mp[m] = function () { rec('mixpanel', m, arguments); };
    });
    for (var i = 0; i < inits.length; i++) mp.init.apply(mp, inits[i]);
    mp.__loaded = inits.length > 0;
    window.mixpanel = mp;`,
  // analytics-browser-2.x.min.js: the amplitude global with Identify.
  '/amplitude.js': `
    var a = {};
    ['init', 'track', 'setUserId', 'setGroup'].forEach(function (m) { a[m] = function () { rec('amplitude', m, arguments); }; });
    a.Identify = function () { this.ops = {}; };
    a.Identify.prototype.set = function (k, v) { this.ops[k] = v; return this; };
    a.identify = function (id) { rec('amplitude', 'identify', [id.ops]); };
    window.amplitude = a;`,
};

export async function startTagServer() {
  const requests = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(url.pathname + url.search);
    const body = TAGS[url.pathname];
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('no such tag');
      return;
    }
    const delay = Number(url.searchParams.get('delay') || 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, 5000)));
    const broken = url.searchParams.get('throw') === '1';
    const js = broken ? "throw new Error('this tag is broken');" : `(function () {${RECORD}${body}\n})();`;
    res.writeHead(200, { 'Content-Type': 'application/javascript', 'Cache-Control': 'no-store' });
    res.end(js);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    requests,
    // Requests whose path and query contain `text`.
    requested: (text) => requests.filter((r) => r.includes(text)),
    close: () => new Promise((r) => server.close(r) || server.closeAllConnections()),
  };
}
