// Amplitude's Browser SDK 2 (device mode; docs/browser.md): identify → amplitude.setUserId and
// amplitude.identify(Identify with each trait set), track → amplitude.track, page →
// amplitude.track('Page Viewed', properties), group → amplitude.setGroup(group_type, groupId).
(window.__syIntegrations = window.__syIntegrations || {}).amplitude = (s) => {
  const w = window;
  return {
    ready: () => !!(w.amplitude && typeof w.amplitude.track == 'function'),
    start() {
      // Autocapture off: events come from Segment calls only.
      w.amplitude.init(s.api_key, { autocapture: false });
    },
    identify(e) {
      const a = w.amplitude;
      if (e.userId) a.setUserId(String(e.userId));
      const t = e.traits || {};
      const id = new a.Identify();
      for (const k in t) id.set(k, t[k]);
      a.identify(id);
    },
    track(e) {
      w.amplitude.track(String(e.event), e.properties || {});
    },
    page(e) {
      w.amplitude.track('Page Viewed', e.properties || {});
    },
    group(e) {
      w.amplitude.setGroup(s.group_type || 'company', String(e.groupId));
    },
  };
};
