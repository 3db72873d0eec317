// Jitsu style: PII scrubbing. Removes email addresses from traits and properties, and the IP.
export default function (event, ctx) {
  for (const bag of [event.traits, event.properties, event.context?.traits]) {
    if (bag && 'email' in bag) delete bag.email;
  }
  if (event.context) delete event.context.ip;
  event.properties = {...event.properties, scrubbed_by: ctx.props.marker};
  return event;
}
