// Device mode and consent (docs/browser.md).
//
// Device mode: the settings document lists the source's device-mode destinations
// (integrations.<name>.integration); the code of each integration runs ahead of this library and
// registers a factory in window.__syIntegrations. A Device loads its vendor's tag only once the
// destination's consent categories are all granted, queues calls until the tag has run (at most
// MAX_QUEUE), then maps each call to the vendor's API. A tag that fails to load, does not start
// or throws is isolated: console warning, counters in analytics.debugView(), and neither the page,
// the other tags nor delivery to Switchyard notice.
//
// Consent: categoryPreferences ({analytics: true, advertising: false, …}) gathered from
// analytics.load(key, {consent: {categoryPreferences}}), analytics.consent(…), the IAB TCF v2 API
// (__tcfapi) and Google Consent Mode (consent commands in window.dataLayer). Whichever speaks last
// sets the categories it covers. A category nobody has spoken about is unknown: a tag waiting on it
// queues calls; a denied category drops them (and a revocation stops calls to a loaded tag).

const MAX_QUEUE = 100;

// TCF v2 purposes each category needs (all of them consented). Purpose 1 is storing or reading
// information on the device, which every tag does.
export const TCF_PURPOSES = {
  functional: [1],
  analytics: [1, 8, 9, 10],
  advertising: [1, 2, 3, 4, 7],
  personalization: [1, 5, 6],
};

// Google Consent Mode storage types → categories.
export const GCM_TYPES = {
  analytics_storage: 'analytics',
  ad_storage: 'advertising',
  functionality_storage: 'functional',
  personalization_storage: 'personalization',
};

// The consent state and its sources. `changed` runs after every change.
export class Consent {
  constructor(initial, changed) {
    this.prefs = {};
    this.changed = changed;
    this.dlSeen = 0;
    if (initial) this.set(initial, true);
    this.watchTcf();
    this.scanDataLayer();
    // Consent Mode updates are pushed to dataLayer, whose push gtag.js replaces: read new
    // entries on every call and every second instead of hooking push.
    this.timer = setInterval(() => this.scanDataLayer(), 1000);
  }
  known() {
    return Object.keys(this.prefs).length > 0;
  }
  // Merges {category: bool}; `quiet` skips the change notification (construction).
  set(p, quiet) {
    if (p && typeof p == 'object' && p.categoryPreferences) p = p.categoryPreferences;
    if (!p || typeof p != 'object') return;
    let diff = false;
    for (const k in p) {
      const v = !!p[k];
      if (this.prefs[k] !== v) diff = true;
      this.prefs[k] = v;
    }
    if (diff && !quiet) this.changed();
  }
  // true: every category granted; false: one denied; undefined: one not known yet.
  allows(categories) {
    let out = true;
    for (const c of categories || []) {
      const v = this.prefs[c];
      if (v === false) return false;
      if (v !== true) out = undefined;
    }
    return out;
  }
  watchTcf() {
    const w = window;
    if (this.tcf || typeof w.__tcfapi != 'function') return;
    this.tcf = true;
    try {
      w.__tcfapi('addEventListener', 2, (d, ok) => {
        if (!ok || !d) return;
        if (d.eventStatus != 'tcloaded' && d.eventStatus != 'useractioncomplete') return;
        const next = {};
        for (const c in TCF_PURPOSES) {
          // gdprApplies false: TCF does not govern this visitor; its categories are granted.
          const consents = (d.purpose && d.purpose.consents) || {};
          next[c] = d.gdprApplies === false || TCF_PURPOSES[c].every((n) => !!consents[n]);
        }
        this.set(next);
      });
    } catch (e) {
      console.warn('[switchyard] __tcfapi failed', e);
    }
  }
  scanDataLayer() {
    const dl = window.dataLayer;
    if (!Array.isArray(dl)) return;
    if (this.dlSeen > dl.length) this.dlSeen = 0;
    const next = {};
    let any = false;
    for (; this.dlSeen < dl.length; this.dlSeen++) {
      const e = dl[this.dlSeen];
      if (!e || e[0] != 'consent' || (e[1] != 'default' && e[1] != 'update') || !e[2]) continue;
      for (const t in GCM_TYPES) {
        if (e[2][t] == null) continue;
        next[GCM_TYPES[t]] = e[2][t] == 'granted';
        any = true;
      }
    }
    if (any) this.set(next);
  }
}

// A call's integrations object switches a device-mode destination off by its name, its display
// name, or All: false (the destination's own entry wins), as on the server.
function switchedOn(integrations, name, display) {
  const i = integrations || {};
  const own = name in i ? i[name] : display in i ? i[display] : undefined;
  if (own !== undefined) return own !== false && own !== null;
  return i.All !== false && i.All !== null;
}

export class Device {
  constructor(name, entry, factory, kit, consent) {
    this.name = name;
    this.e = entry;
    this.consent = consent;
    this.state = 'waiting'; // waiting (for consent), loading, ready, failed
    this.q = [];
    this.stats = { calls: 0, errors: 0, dropped: 0 };
    try {
      this.i = factory(entry.settings || {}, kit);
    } catch (e) {
      this.fail(e);
    }
  }
  allowed() {
    return this.consent.allows(this.e.consentCategories);
  }
  url() {
    const s = this.e.settings || {};
    return String(this.e.tagUrl || '').replace(/\{([a-z_]+)\}/g, (_, k) =>
      encodeURIComponent(s[k] == null ? '' : s[k]),
    );
  }
  fail(e) {
    this.state = 'failed';
    this.stats.errors++;
    this.stats.dropped += this.q.length;
    this.q = [];
    console.warn('[switchyard] device-mode destination ' + this.name + ' failed:', (e && e.message) || e);
  }
  // Consent changed (or the library started): load once allowed, forget queued calls if denied.
  update() {
    const a = this.allowed();
    if (a === false && this.q.length) {
      this.stats.dropped += this.q.length;
      this.q = [];
    }
    if (a === true && this.state == 'waiting') this.load();
  }
  handle(ev) {
    if (this.state == 'failed' || !switchedOn(ev.integrations, this.name, this.e.displayName)) return;
    const a = this.allowed();
    if (a === false) return;
    if (this.state == 'ready') return this.call(ev);
    if (this.q.length >= MAX_QUEUE) {
      this.q.shift();
      this.stats.dropped++;
    }
    this.q.push(ev);
    if (a === true && this.state == 'waiting') this.load();
  }
  load() {
    this.state = 'loading';
    const src = this.url();
    try {
      if (this.i.init) this.i.init();
    } catch (e) {
      return this.fail(e);
    }
    const s = document.createElement('script');
    s.async = true;
    s.src = src;
    s.onload = () => {
      try {
        if (this.i.ready && !this.i.ready()) throw new Error('the tag at ' + src + ' did not start');
        if (this.i.start) this.i.start();
      } catch (e) {
        return this.fail(e);
      }
      this.state = 'ready';
      const q = this.q;
      this.q = [];
      for (const ev of q) this.call(ev);
    };
    s.onerror = () => this.fail(new Error('the tag at ' + src + ' did not load'));
    (document.head || document.documentElement).appendChild(s);
  }
  call(ev) {
    if (this.allowed() !== true) return; // revoked since
    const f = this.i[ev.type];
    if (!f) return;
    try {
      f.call(this.i, ev);
      this.stats.calls++;
    } catch (e) {
      this.stats.errors++;
      console.warn('[switchyard] device-mode destination ' + this.name + ' threw on ' + ev.type + ':', e && e.message);
    }
  }
  view() {
    return Object.assign({ integration: this.e.integration, state: this.state, queued: this.q.length }, this.stats);
  }
}
