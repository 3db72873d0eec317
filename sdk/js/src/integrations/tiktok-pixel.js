// The TikTok Pixel (device mode; docs/browser.md). track carries event_id = messageId, as the
// Events API destination does: with `mode: both` TikTok keeps one copy.
(window.__syIntegrations = window.__syIntegrations || {})['tiktok-pixel'] = (s) => {
  const w = window;
  const code = s.pixel_code;
  // The same names as the Events API destination (src/destinations/tiktok).
  const STANDARD = {
    'Product Viewed': 'ViewContent',
    'Product Added': 'AddToCart',
    'Product Added to Wishlist': 'AddToWishlist',
    'Checkout Started': 'InitiateCheckout',
    'Payment Info Entered': 'AddPaymentInfo',
    'Order Completed': 'CompletePayment',
    'Products Searched': 'Search',
  };
  return {
    init() {
      // TikTok's base code, reduced: the ttq queue and the pixel's load record, which
      // events.js reads when it starts.
      w.TiktokAnalyticsObject = 'ttq';
      const ttq = (w.ttq = w.ttq || []);
      ttq.methods = ['page', 'track', 'identify', 'instances', 'debug', 'on', 'off', 'once', 'ready'];
      ttq.setAndDefer = (t, m) => {
        t[m] = function () {
          t.push([m].concat(Array.prototype.slice.call(arguments, 0)));
        };
      };
      for (const m of ttq.methods) if (!ttq[m]) ttq.setAndDefer(ttq, m);
      ttq._i = ttq._i || {};
      ttq._i[code] = [];
      ttq._t = ttq._t || {};
      ttq._t[code] = +new Date();
      ttq._o = ttq._o || {};
      ttq._o[code] = {};
    },
    identify(e) {
      const t = e.traits || {};
      const data = {};
      if (t.email) data.email = String(t.email).trim().toLowerCase();
      if (t.phone) data.phone_number = String(t.phone);
      if (e.userId) data.external_id = String(e.userId);
      w.ttq.identify(data);
    },
    track(e) {
      const p = Object.assign({}, e.properties || {});
      const value = p.revenue != null ? p.revenue : p.total != null ? p.total : p.value;
      if (value != null) p.value = Number(value);
      w.ttq.track(STANDARD[e.event] || String(e.event), p, { event_id: e.messageId });
    },
    page() {
      w.ttq.page();
    },
  };
};
