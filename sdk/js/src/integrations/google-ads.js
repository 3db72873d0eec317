// The Google Ads conversion tag through gtag.js (device mode; docs/browser.md). A track whose
// event name is in `conversions` becomes gtag('event', 'conversion', {send_to: '<id>/<label>',
// value, currency, transaction_id}); page() a page_view for remarketing. Others are not sent.
import { ecommerce } from './_gtag.js';

(window.__syIntegrations = window.__syIntegrations || {})['google-ads'] = (s) => {
  const w = window;
  const id = s.conversion_id;
  const conversions = s.conversions || {};
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
      gtag('config', id, { send_page_view: false });
    },
    ready: () => !!w.google_tag_manager,
    track(e) {
      const label = conversions[e.event];
      if (!label) return;
      const p = ecommerce(e.properties || {});
      const params = { send_to: label.indexOf('/') > 0 ? label : id + '/' + label };
      if (p.value != null) params.value = p.value;
      if (p.currency) params.currency = p.currency;
      if (p.transaction_id) params.transaction_id = p.transaction_id;
      gtag('event', 'conversion', params);
    },
    page(e) {
      const p = e.properties || {};
      gtag('event', 'page_view', { send_to: id, page_location: p.url, page_title: p.title });
    },
  };
};
