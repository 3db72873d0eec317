// Shared by the gtag integrations (GA4, Google Ads), bundled into each; a name starting with _
// is not an integration (build.mjs).
const GA4_NAMES = {
  'Products Searched': 'search',
  'Product List Viewed': 'view_item_list',
  'Product Clicked': 'select_item',
  'Product Viewed': 'view_item',
  'Product Added': 'add_to_cart',
  'Product Removed': 'remove_from_cart',
  'Cart Viewed': 'view_cart',
  'Checkout Started': 'begin_checkout',
  'Payment Info Entered': 'add_payment_info',
  'Order Completed': 'purchase',
  'Order Refunded': 'refund',
  'Product Added to Wishlist': 'add_to_wishlist',
  'Promotion Viewed': 'view_promotion',
  'Promotion Clicked': 'select_promotion',
  'Signed Up': 'sign_up',
  'Logged In': 'login',
};

// A Segment event name as a GA4 event name: the recommended event for Segment's spec names,
// otherwise lowercase with [a-z0-9_] only, at most 40 characters (GA4's rules).
export function snake(name) {
  name = String(name || '');
  return GA4_NAMES[name] || name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40);
}

// Segment's e-commerce properties as gtag parameters; other properties pass through.
export function ecommerce(p) {
  const out = Object.assign({}, p);
  const value = p.revenue != null ? p.revenue : p.total != null ? p.total : p.value;
  if (value != null) out.value = Number(value);
  if (p.order_id != null) out.transaction_id = String(p.order_id);
  if (Array.isArray(p.products))
    out.items = p.products.map((x) => ({
      item_id: x.product_id || x.sku,
      item_name: x.name,
      item_category: x.category,
      item_brand: x.brand,
      price: x.price,
      quantity: x.quantity,
    }));
  delete out.products;
  delete out.revenue;
  delete out.total;
  delete out.order_id;
  return out;
}
