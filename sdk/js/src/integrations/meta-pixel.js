// The Meta Pixel (device mode; docs/browser.md). Every call carries eventID = messageId, the
// event_id the Conversions API destination sends: with `mode: both` Meta keeps one copy.
(window.__syIntegrations = window.__syIntegrations || {})['meta-pixel'] = (s) => {
  const w = window;
  const id = s.pixel_id;
  // The same names as the Conversions API destination (src/destinations/meta_conversions).
  const STANDARD = {
    'Product Viewed': 'ViewContent',
    'Product List Viewed': 'ViewContent',
    'Product Added': 'AddToCart',
    'Product Added to Wishlist': 'AddToWishlist',
    'Checkout Started': 'InitiateCheckout',
    'Payment Info Entered': 'AddPaymentInfo',
    'Order Completed': 'Purchase',
    'Products Searched': 'Search',
  };
  const params = (p) => {
    const out = Object.assign({}, p);
    const value = p.revenue != null ? p.revenue : p.total != null ? p.total : p.value;
    if (value != null) out.value = Number(value);
    if (Array.isArray(p.products)) {
      out.content_ids = p.products.map((x) => String(x.product_id || x.sku));
      out.content_type = 'product';
      out.num_items = p.products.length;
      delete out.products;
    } else if (p.product_id != null) {
      out.content_ids = [String(p.product_id)];
      out.content_type = 'product';
    }
    if (p.query != null) out.search_string = p.query;
    return out;
  };
  const fbq = (...a) => w.fbq(...a);
  return {
    init() {
      // Meta's base code: a queue until fbevents.js takes over (callMethod).
      if (!w.fbq) {
        const n = (w.fbq = function () {
          n.callMethod ? n.callMethod.apply(n, arguments) : n.queue.push(arguments);
        });
        if (!w._fbq) w._fbq = n;
        n.push = n;
        n.loaded = true;
        n.version = '2.0';
        n.queue = [];
      }
      fbq('init', id);
    },
    ready: () => !!(w.fbq && w.fbq.callMethod),
    identify(e) {
      // Advanced matching: the pixel normalises and hashes these itself.
      const t = e.traits || {};
      const data = {};
      if (t.email) data.em = String(t.email).trim().toLowerCase();
      if (t.phone) data.ph = String(t.phone).replace(/[^0-9]/g, '');
      if (t.firstName || t.first_name) data.fn = String(t.firstName || t.first_name).toLowerCase();
      if (t.lastName || t.last_name) data.ln = String(t.lastName || t.last_name).toLowerCase();
      if (e.userId) data.external_id = String(e.userId);
      fbq('init', id, data);
    },
    track(e) {
      const std = STANDARD[e.event];
      const opts = { eventID: e.messageId };
      if (std) fbq('track', std, params(e.properties || {}), opts);
      else fbq('trackCustom', String(e.event), params(e.properties || {}), opts);
    },
    page(e) {
      fbq('track', 'PageView', {}, { eventID: e.messageId });
    },
  };
};
