// Switchyard's browser library: the analytics.js API (track, identify, page, screen, group,
// alias, reset, user, ready, setAnonymousId, addSourceMiddleware, debug, on/off/once) in a few KB.
//
// Loading: the server serves this file at /analytics.js/v1/<writeKey>/analytics.min.js with the
// source's settings document written in place of SETTINGS below, so a page needs one request.
// The snippet (snippet.js) defines window.analytics as a queue of stub calls; on start the
// queued calls are replayed in order, with the page context they were made on.
//
// Delivery: every event goes first into a queue persisted in localStorage (so nothing is lost
// to a closed tab or a network failure), then in batches to <apiHost>/b as text/plain (no CORS
// preflight). 408, 429, 5xx and network errors are retried with exponential backoff and full
// jitter, honouring Retry-After; other 4xx drop the batch. On pagehide what is left is handed to
// sendBeacon. An event may be sent twice (a batch in flight when the page closes); the server
// drops the duplicate by messageId.
//
// Device mode and consent: device.js. Every event carries context.consent.categoryPreferences
// once any consent source has spoken.
import { cookieGet, cookieSet, lsGet, lsSet } from './store.js';
import { Consent, Device } from './device.js';

const VERSION = '0.1.0';
const LIBRARY = 'analytics.js-switchyard';
// Replaced by the server with the source's settings document (a JSON object literal).
const SETTINGS = '@@SWITCHYARD_SETTINGS@@';

const FLUSH_AT = 20; // events per batch
const FLUSH_INTERVAL_MS = 500;
const MAX_BATCH_BYTES = 60 * 1024; // sendBeacon and keepalive bodies are capped at 64 KB
const MAX_QUEUE = 1000; // persisted events kept at most (oldest dropped first)
const MAX_BACKOFF_MS = 60000;
const BUFFERED_PAGE_CONTEXT = 'bpc';

const w = window;
const loc = w.location;
const nav = w.navigator;

function uuid() {
  if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c == 'x' ? r : (r & 3) | 8).toString(16);
  });
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isFn = (v) => typeof v === 'function';
const isStr = (v) => typeof v === 'string';
const now = () => new Date().toISOString();

function pageContext(bpc) {
  if (bpc) return { path: bpc.p, url: bpc.c || bpc.u, title: bpc.t, referrer: bpc.r, search: bpc.s };
  const canon = document.querySelector("link[rel='canonical']");
  const c = canon && canon.getAttribute('href');
  return {
    path: loc.pathname,
    url: c || loc.href,
    title: document.title,
    referrer: document.referrer,
    search: loc.search,
  };
}

function campaign(search) {
  const out = {};
  new URLSearchParams(search || '').forEach((v, k) => {
    if (k.indexOf('utm_') != 0) return;
    k = k.slice(4);
    out[k == 'campaign' ? 'name' : k] = v;
  });
  return out;
}

function timezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return undefined;
  }
}

// Persisted identity: localStorage first, the cookie as its mirror (and the only store that
// other subdomains can read).
class User {
  constructor(prefix) {
    this.p = prefix;
  }
  get(name) {
    const v = lsGet(this.p + name);
    return v != null ? v : cookieGet(this.p + name);
  }
  set(name, value, cookie) {
    lsSet(this.p + name, value);
    if (cookie) cookieSet(this.p + name, value);
  }
  id(v) {
    if (arguments.length) this.set('user_id', v, true);
    const id = this.get('user_id');
    return id == null ? null : id;
  }
  anonymousId(v) {
    if (v !== undefined) this.set('anonymous_id', v, true);
    let id = this.get('anonymous_id');
    if (id == null) this.set('anonymous_id', (id = uuid()), true);
    return id;
  }
  traits(v) {
    if (v !== undefined) this.set('user_traits', JSON.stringify(v || {}));
    return parseJson(this.get('user_traits'));
  }
  groupId(v) {
    if (arguments.length) this.set('group_id', v, true);
    return this.get('group_id');
  }
  groupTraits(v) {
    if (v !== undefined) this.set('group_properties', JSON.stringify(v || {}));
    return parseJson(this.get('group_properties'));
  }
}

function parseJson(s) {
  try {
    const v = JSON.parse(s);
    return isObj(v) ? v : {};
  } catch (e) {
    return {};
  }
}

// page/screen arguments: ([category], [name], [properties], [options], [callback]).
function pageArgs(args) {
  const a = Array.from(args);
  const cb = isFn(a[a.length - 1]) ? a.pop() : undefined;
  let category, name;
  if (isStr(a[0]) && isStr(a[1])) [category, name] = a.splice(0, 2);
  else if (isStr(a[0]) || a[0] == null) name = a.shift() || undefined;
  if (a[0] == null && a.length) a.shift();
  return { category, name, properties: isObj(a[0]) ? a[0] : {}, options: isObj(a[1]) ? a[1] : {}, cb };
}

function restArgs(a) {
  a = Array.from(a);
  const cb = isFn(a[a.length - 1]) ? a.pop() : undefined;
  return { a, cb };
}

class Delivery {
  constructor(endpoint, writeKey, log) {
    this.url = endpoint;
    this.wk = writeKey;
    this.key = 'sy:queue:' + writeKey;
    this.log = log;
    this.q = (() => {
      try {
        const v = JSON.parse(lsGet(this.key) || '[]');
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [];
      }
    })();
    this.busy = false;
    this.attempt = 0;
    this.timer = null;
    w.addEventListener('pagehide', () => this.beacon());
    w.addEventListener('online', () => this.schedule(0));
    if (this.q.length) this.schedule(0);
  }
  save() {
    if (this.q.length > MAX_QUEUE) this.q.splice(0, this.q.length - MAX_QUEUE);
    lsSet(this.key, JSON.stringify(this.q));
  }
  push(event) {
    this.q.push(event);
    this.save();
    this.schedule(this.q.length >= FLUSH_AT ? 0 : FLUSH_INTERVAL_MS);
  }
  schedule(ms) {
    if (this.busy || !this.q.length) return;
    if (this.timer) {
      if (ms) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, ms);
  }
  // The first events of the queue that fit in one request.
  take() {
    const out = [];
    let bytes = 64;
    for (const e of this.q) {
      const n = JSON.stringify(e).length + 1;
      if (out.length && (bytes + n > MAX_BATCH_BYTES || out.length >= FLUSH_AT * 5)) break;
      out.push(e);
      bytes += n;
    }
    return out;
  }
  body(batch) {
    return JSON.stringify({ batch, writeKey: this.wk, sentAt: now() });
  }
  drop(batch) {
    const ids = new Set(batch.map((e) => e.messageId));
    this.q = this.q.filter((e) => !ids.has(e.messageId));
    this.save();
  }
  flush() {
    // Offline: keep the queue (persisted) until the browser says it is back ('online').
    if (this.busy || !this.q.length || nav.onLine === false) return;
    const batch = this.take();
    this.busy = true;
    const retry = (after) => {
      this.busy = false;
      this.attempt++;
      const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
      const ms = after != null ? after : Math.random() * backoff;
      this.log('retry', { ms, attempt: this.attempt });
      this.schedule(Math.max(ms, 1));
    };
    fetch(this.url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: this.body(batch),
      keepalive: true,
    }).then(
      (res) => {
        const s = res.status;
        if (s == 408 || s == 429 || (s >= 500 && s != 501 && s != 505)) {
          const ra = parseFloat(res.headers.get('Retry-After'));
          return retry(ra >= 0 ? Math.min(ra, 300) * 1000 : null);
        }
        if (s >= 400) this.log('dropped batch', { status: s });
        this.attempt = 0;
        this.busy = false;
        this.drop(batch);
        this.schedule(0);
      },
      () => retry(null),
    );
  }
  // pagehide: hand every queued event to the browser, which sends it after the page is gone.
  // Offline, a beacon would be accepted and then lost: the queue waits for the next page instead.
  beacon() {
    if (!nav.sendBeacon || nav.onLine === false) return;
    while (this.q.length) {
      const batch = this.take();
      const blob = new Blob([this.body(batch)], { type: 'text/plain' });
      if (!nav.sendBeacon(this.url, blob)) return; // kept: sent from the next page
      this.drop(batch);
    }
  }
}

class Analytics {
  constructor(settings, opts) {
    const seg = (settings.integrations || {})['Segment.io'] || {};
    this.settings = settings;
    this.writeKey = seg.apiKey;
    const host = (opts && opts.apiHost) || seg.apiHost;
    const proto = (opts && opts.protocol) || seg.protocol || 'https';
    this._debug = false;
    this._mw = [];
    this._ev = {};
    this._user = new User('ajs_');
    this._dl = new Delivery(proto + '://' + host + '/b', this.writeKey, (m, d) => this._log(m, d));
    this.VERSION = VERSION;
    this.initialized = true;
    this._devices = [];
    this._consent = new Consent(opts && opts.consent, () => this._devices.forEach((d) => d.update()));
    const found = w.__syIntegrations || {};
    const kit = { user: () => ({ id: this._user.id(), traits: this._user.traits() }) };
    const all = settings.integrations || {};
    for (const name in all) {
      const e = all[name];
      if (!isObj(e) || !e.integration) continue;
      const f = found[e.integration];
      if (isFn(f)) this._devices.push(new Device(name, e, f, kit, this._consent));
      else console.warn('[switchyard] no code for device-mode destination ' + name);
    }
  }
  // Updates the visitor's consent: {category: bool} or {categoryPreferences: {…}}.
  consent(prefs) {
    this._consent.set(prefs);
    return this;
  }
  // What the library knows: consent so far and each device-mode destination's state and counters.
  debugView() {
    const integrations = {};
    for (const d of this._devices) integrations[d.name] = d.view();
    return { consent: Object.assign({}, this._consent.prefs), integrations };
  }
  _log(msg, data) {
    if (this._debug) console.log('[switchyard]', msg, data || '');
  }
  debug(on) {
    this._debug = on !== false;
  }
  user() {
    const u = this._user;
    return {
      id: (...a) => u.id(...a),
      anonymousId: (...a) => u.anonymousId(...a),
      traits: (t) => (t === undefined ? u.traits() : u.traits(t)),
    };
  }
  _group() {
    const u = this._user;
    return { id: (...a) => u.groupId(...a), traits: (t) => (t === undefined ? u.groupTraits() : u.groupTraits(t)) };
  }
  setAnonymousId(id) {
    return this._user.anonymousId(id);
  }
  reset() {
    const u = this._user;
    u.id(null);
    u.traits({});
    u.groupId(null);
    u.groupTraits({});
    u.anonymousId(uuid());
  }
  ready(cb) {
    return Promise.resolve().then(() => isFn(cb) && cb());
  }
  on(name, fn) {
    (this._ev[name] = this._ev[name] || []).push(fn);
    return this;
  }
  off(name, fn) {
    this._ev[name] = (this._ev[name] || []).filter((f) => f !== fn);
    return this;
  }
  once(name, fn) {
    const g = (...a) => {
      this.off(name, g);
      fn(...a);
    };
    return this.on(name, g);
  }
  _emit(name, ...a) {
    for (const f of this._ev[name] || []) {
      try {
        f(...a);
      } catch (e) {
        this._log('listener failed', e);
      }
    }
  }
  addSourceMiddleware(fn) {
    this._mw.push(fn);
    return this;
  }
  track(event, properties, options, cb) {
    ({ a: [event, properties, options], cb } = restArgs(arguments));
    this._emit('track', event, properties, options);
    return this._send('track', { event, properties: properties || {} }, options, cb);
  }
  identify(id, traits, options, cb) {
    let a;
    ({ a, cb } = restArgs(arguments));
    if (isObj(a[0])) a.unshift(null);
    [id, traits, options] = a;
    const u = this._user;
    if (id != null && id !== u.id()) {
      if (u.id()) u.traits({});
      u.id(String(id));
    }
    u.traits(Object.assign(u.traits(), traits || {}));
    this._emit('identify', id, traits, options);
    return this._send('identify', { traits: u.traits() }, options, cb);
  }
  group(id, traits, options, cb) {
    if (!arguments.length) return this._group();
    let a;
    ({ a, cb } = restArgs(arguments));
    if (isObj(a[0])) a.unshift(null);
    [id, traits, options] = a;
    const u = this._user;
    if (id != null) u.groupId(String(id));
    u.groupTraits(Object.assign(u.groupTraits(), traits || {}));
    return this._send('group', { groupId: u.groupId(), traits: u.groupTraits() }, options, cb);
  }
  alias(to, from, options, cb) {
    let a;
    ({ a, cb } = restArgs(arguments));
    [to, from, options] = a;
    if (isObj(from)) [from, options] = [null, from];
    const u = this._user;
    const previousId = from != null ? String(from) : u.id() || u.anonymousId();
    return this._send('alias', { userId: String(to), previousId }, options, cb);
  }
  page() {
    return this._page('page', arguments);
  }
  screen() {
    return this._page('screen', arguments);
  }
  _page(type, args) {
    const p = pageArgs(args);
    const page = pageContext(this._bpc);
    const properties = Object.assign({}, type == 'page' ? page : {}, p.properties);
    if (p.name) properties.name = p.name;
    if (p.category) properties.category = p.category;
    const ev = { properties };
    if (p.name) ev.name = p.name;
    if (p.category) ev.category = p.category;
    this._emit(type, p.category, p.name, p.properties, p.options);
    return this._send(type, ev, p.options, p.cb);
  }
  _send(type, fields, options, cb) {
    options = isObj(options) ? options : {};
    const u = this._user;
    const page = pageContext(this._bpc);
    const context = Object.assign(
      {
        page,
        userAgent: nav.userAgent,
        locale: nav.language,
        timezone: timezone(),
        library: { name: LIBRARY, version: VERSION },
      },
      options.context,
    );
    const camp = campaign(page.search);
    if (Object.keys(camp).length) context.campaign = camp;
    const consent = this._consent;
    consent.watchTcf(); // a CMP that arrived after the library
    consent.scanDataLayer();
    if (consent.known() && !(options.context && options.context.consent))
      context.consent = { categoryPreferences: Object.assign({}, consent.prefs) };
    const event = Object.assign(
      {
        type,
        messageId: 'sy-' + uuid(),
        timestamp: options.timestamp ? new Date(options.timestamp).toISOString() : now(),
        anonymousId: options.anonymousId || u.anonymousId(),
        context,
        integrations: options.integrations || {},
      },
      fields,
    );
    const userId = u.id();
    if (userId && event.userId == null) event.userId = userId;
    if (type == 'alias') event.userId = fields.userId;
    const integrations = this.settings.integrations || {};
    let i = 0;
    const next = (payload) => {
      if (!payload || !payload.obj) return this._log('dropped by middleware', event);
      const mw = this._mw[i++];
      if (mw) {
        try {
          return mw({ payload, integrations, next });
        } catch (e) {
          this._log('middleware failed', e);
          return next(payload);
        }
      }
      this._log(type, payload.obj);
      this._dl.push(payload.obj);
      for (const d of this._devices) {
        try {
          d.handle(payload.obj);
        } catch (e) {
          this._log('device-mode destination failed', e);
        }
      }
    };
    next({ obj: event });
    if (isFn(cb)) setTimeout(cb, 0);
    return Promise.resolve({ event });
  }
}

// Start: take the snippet's queue (or an empty one), replace window.analytics, replay calls.
(function start() {
  const stub = w.analytics;
  if (stub && stub.initialized) return; // loaded twice
  const queued = Array.isArray(stub) ? stub.slice() : [];
  let settings = SETTINGS;
  if (isStr(settings)) settings = { integrations: { 'Segment.io': { apiKey: stub && stub._writeKey } } };
  const a = new Analytics(settings, stub && stub._loadOptions);
  w.analytics = a;
  for (const call of queued) {
    if (!Array.isArray(call)) continue;
    const [method, ...args] = call;
    const last = args[args.length - 1];
    a._bpc = isObj(last) && last.__t == BUFFERED_PAGE_CONTEXT ? args.pop() : null;
    if (method == 'load' || !isFn(a[method])) continue;
    try {
      a[method](...args);
    } catch (e) {
      a._log('queued call failed', e);
    }
  }
  a._bpc = null;
  for (const d of a._devices) d.update(); // loads what needs no consent or has it already
})();
