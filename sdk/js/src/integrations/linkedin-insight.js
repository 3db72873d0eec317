// The LinkedIn Insight Tag (device mode; docs/browser.md). The tag records the page view itself
// when it loads; a track whose event name is in `conversions` becomes
// lintrk('track', {conversion_id}). identify and group have no equivalent.
(window.__syIntegrations = window.__syIntegrations || {})['linkedin-insight'] = (s) => {
  const w = window;
  const conversions = s.conversions || {};
  return {
    init() {
      w._linkedin_partner_id = String(s.partner_id);
      w._linkedin_data_partner_ids = w._linkedin_data_partner_ids || [];
      w._linkedin_data_partner_ids.push(w._linkedin_partner_id);
    },
    ready: () => typeof w.lintrk == 'function',
    track(e) {
      const id = conversions[e.event];
      if (id) w.lintrk('track', { conversion_id: Number(id) });
    },
  };
};
