// Google Analytics 4 through gtag.js (device mode; docs/browser.md has the mapping table).
// Each integration file registers a factory in window.__syIntegrations under its id; the library
// calls it with the destination's browser-safe settings and a small kit, then loads the tag.
// Factory result: init() before the tag loads (the vendor's documented globals), ready() after
// it ran (false: the tag failed), and one method per Segment call type it maps.
import { snake, ecommerce } from './_gtag.js';

(window.__syIntegrations = window.__syIntegrations || {}).ga4 = (s) => {
  const w = window;
  const id = s.measurement_id;
  const gtag = (...a) => w.gtag(...a);
  return {
    init() {
      w.dataLayer = w.dataLayer || [];
      w.gtag =
        w.gtag ||
        function () {
          w.dataLayer.push(arguments);
        };
      gtag('js', new Date());
      // Page views come from page() calls, not from the tag on its own.
      gtag('config', id, { send_page_view: false });
    },
    ready: () => !!w.google_tag_manager,
    identify(e) {
      if (e.userId) gtag('set', { user_id: e.userId });
      gtag('set', 'user_properties', e.traits || {});
    },
    track(e) {
      gtag('event', snake(e.event), Object.assign(ecommerce(e.properties || {}), { send_to: id }));
    },
    page(e) {
      const p = e.properties || {};
      gtag('event', 'page_view', {
        page_title: p.title,
        page_location: p.url,
        page_path: p.path,
        page_referrer: p.referrer,
        send_to: id,
      });
    },
  };
};
