// Throws on every track: the event goes to the dead-letter store with the stack.
function transformEvent(event) {
  if (event.type === 'track') {
    return event.properties.missing.field;
  }
  return event;
}
