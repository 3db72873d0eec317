// Segment style: rename events to snake_case, drop pages, reject screens without a name.
async function onTrack(event, settings) {
  event.event = event.event.toLowerCase().replace(/\s+/g, '_');
  return event;
}
async function onPage(event) {
  throw new DropEvent('pages are not wanted here');
}
async function onScreen(event) {
  if (event.name === 'Home') throw new ValidationError('screen Home is not allowed');
  return event;
}
