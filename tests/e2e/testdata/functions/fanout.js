// RudderStack style: an order also becomes a Revenue event; anonymous views are dropped.
export function transformEvent(event, metadata) {
  if (event.type !== 'track') return event;
  if (event.event === 'Viewed') return null;
  if (event.event === 'Order Completed') {
    return [event, {...event, event: 'Revenue', properties: {revenue: event.properties.revenue,
      source: metadata(event).sourceName}}];
  }
  return event;
}
