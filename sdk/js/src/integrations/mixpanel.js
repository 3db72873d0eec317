// Mixpanel's browser library (device mode; docs/browser.md): identify → mixpanel.identify and
// mixpanel.people.set(traits), track → mixpanel.track, page → mixpanel.track_pageview,
// group → mixpanel.set_group(group_key, groupId).
(window.__syIntegrations = window.__syIntegrations || {}).mixpanel = (s) => {
  const w = window;
  const config = { track_pageview: false };
  if (s.api_host) config.api_host = s.api_host;
  return {
    init() {
      // Mixpanel's snippet, reduced to what mixpanel-js reads when it starts: the init queue.
      if (w.mixpanel && w.mixpanel.__SV) return;
      const m = (w.mixpanel = []);
      m._i = [];
      m.init = (token, cfg, name) => m._i.push([token, cfg, name || 'mixpanel']);
      m.__SV = 1.2;
      m.init(s.token, config);
    },
    ready: () => !!(w.mixpanel && w.mixpanel.__loaded),
    identify(e) {
      if (e.userId) w.mixpanel.identify(String(e.userId));
      const t = e.traits || {};
      if (Object.keys(t).length) w.mixpanel.people.set(t);
    },
    track(e) {
      w.mixpanel.track(String(e.event), e.properties || {});
    },
    page(e) {
      w.mixpanel.track_pageview(e.properties || {});
    },
    group(e) {
      w.mixpanel.set_group(s.group_key || 'company', String(e.groupId));
    },
  };
};
