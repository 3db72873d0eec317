// The HubSpot tracking code (device mode; docs/browser.md), through its _hsq queue:
// identify → ['identify', {email, id, …traits}] (sent with the next page view, HubSpot's rule),
// page → ['setPath', path] then ['trackPageView'], track →
// ['trackCustomBehavioralEvent', {name, properties}].
(window.__syIntegrations = window.__syIntegrations || {}).hubspot = () => {
  const w = window;
  const q = (...a) => w._hsq.push(a);
  return {
    init() {
      w._hsq = w._hsq || [];
    },
    identify(e) {
      const t = Object.assign({}, e.traits || {});
      if (e.userId) t.id = String(e.userId);
      q('identify', t);
    },
    track(e) {
      q('trackCustomBehavioralEvent', { name: String(e.event), properties: e.properties || {} });
    },
    page(e) {
      q('setPath', (e.properties || {}).path || location.pathname);
      q('trackPageView');
    },
  };
};
