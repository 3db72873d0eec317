// The Intercom Messenger (device mode; docs/browser.md): boots once the widget script has run
// (with the user known at that time), identify → Intercom('update', user), track →
// Intercom('trackEvent', name, properties), page → Intercom('update') (Intercom's own advice for
// page changes), group → Intercom('update', {company}).
(window.__syIntegrations = window.__syIntegrations || {}).intercom = (s, kit) => {
  const w = window;
  const user = (id, t) => {
    const out = Object.assign({}, t || {});
    if (id) out.user_id = String(id);
    if (t && t.createdAt) out.created_at = Math.floor(new Date(t.createdAt).getTime() / 1000);
    delete out.createdAt;
    return out;
  };
  return {
    init() {
      w.intercomSettings = Object.assign({}, w.intercomSettings, { app_id: s.app_id });
    },
    ready: () => typeof w.Intercom == 'function',
    start() {
      const u = kit.user();
      w.Intercom('boot', Object.assign({ app_id: s.app_id }, user(u.id, u.traits)));
    },
    identify(e) {
      w.Intercom('update', user(e.userId, e.traits));
    },
    track(e) {
      w.Intercom('trackEvent', String(e.event), e.properties || {});
    },
    page() {
      w.Intercom('update');
    },
    group(e) {
      w.Intercom('update', { company: Object.assign({ company_id: String(e.groupId) }, e.traits) });
    },
  };
};
