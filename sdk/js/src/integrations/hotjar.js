// Hotjar (device mode; docs/browser.md): identify → hj('identify', userId, attributes),
// track → hj('event', name), page → hj('stateChange', url) (a virtual page change).
(window.__syIntegrations = window.__syIntegrations || {}).hotjar = (s) => {
  const w = window;
  // Hotjar's User Attributes take strings, numbers, booleans and dates only.
  const flat = (t) => {
    const out = {};
    for (const k in t) {
      const v = t[k];
      if (v == null || typeof v == 'object') continue;
      out[k] = v;
    }
    return out;
  };
  return {
    init() {
      w.hj =
        w.hj ||
        function () {
          (w.hj.q = w.hj.q || []).push(arguments);
        };
      w._hjSettings = { hjid: Number(s.site_id), hjsv: 6 };
    },
    identify(e) {
      w.hj('identify', e.userId || null, flat(e.traits || {}));
    },
    track(e) {
      w.hj('event', String(e.event));
    },
    page(e) {
      w.hj('stateChange', (e.properties || {}).url || location.href);
    },
  };
};
