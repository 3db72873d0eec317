// The live view: GET /api/v1/live?source=NAME or ?destination=NAME as Server-Sent Events
// (docs/admin-api.md, "The live view"). Shows the newest records first (at most 200 kept), the
// sampling rate the stream states, and how many records it dropped.
import { h, clear, fmtClock } from './ui.js';
import { serves, enc } from './api.js';

const KEEP = 200;

// kind: 'source' | 'destination'. Returns the panel; the stream closes through ctx.onLeave.
export function livePanel(ctx, kind, name) {
  const title = kind === 'source' ? 'Live events' : 'Live delivery attempts';
  if (!serves('GET /api/v1/live')) {
    return h('section.panel', h('h2', title),
      h('div.empty', h('strong', 'The live view is not available on this server.'),
        'This build does not serve GET /api/v1/live yet; use switchyard dump or the delivery figures meanwhile.'));
  }
  const status = h('span.badge', 'connecting…');
  const rate = h('span.muted');
  const body = h('tbody');
  const placeholder = h('tr', h('td', { colspan: 6 }, h('div.empty',
    h('strong', 'Waiting for events.'),
    kind === 'source'
      ? 'Send an event with this source\'s write key (the snippet above, or any Segment library) and it appears here.'
      : 'Events routed to this destination appear here with the outcome of each delivery attempt.')));
  body.append(placeholder);
  const table = h('table.live', { 'data-live': kind },
    h('thead', h('tr', h('th', 'Time'), h('th', 'Stage'), h('th', 'Type'), h('th', 'Event / message'), h('th', kind === 'source' ? 'Source' : 'Status'), h('th', 'Details'))),
    body);
  let count = 0;
  const es = new EventSource(`/api/v1/live?${kind}=${enc(name)}`);
  ctx.onLeave(() => es.close());
  es.addEventListener('open', () => {
    status.textContent = 'live';
    status.className = 'badge ok';
  });
  es.addEventListener('error', () => {
    status.textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…';
    status.className = 'badge warn';
  });
  es.addEventListener('hello', (ev) => {
    const hello = JSON.parse(ev.data);
    rate.textContent = `sampled at up to ${hello.max_per_second}/s${hello.payloads ? '' : ' · payloads hidden for your role'}`;
  });
  es.addEventListener('dropped', (ev) => {
    const d = JSON.parse(ev.data);
    rate.textContent = rate.textContent.replace(/ · \d[\d,]* not shown$/, '') + ` · ${Number(d.total).toLocaleString('en-US')} not shown`;
  });
  es.addEventListener('record', (ev) => {
    const r = JSON.parse(ev.data);
    if (placeholder.isConnected) placeholder.remove();
    const details = [];
    if (r.detail) details.push(h('div', r.detail));
    if (r.payload !== undefined) {
      details.push(h('details', h('summary', r.truncated ? 'payload (cut)' : 'payload'),
        h('pre', typeof r.payload === 'string' ? r.payload : JSON.stringify(r.payload, null, 2))));
    }
    const tr = h('tr', { 'data-stage': r.stage, 'data-message-id': r.messageId || '' },
      h('td.mono', fmtClock(r.at)),
      h('td', h('span.badge', { class: `stage-${r.stage}` }, String(r.stage || '').replace('_', ' '))),
      h('td', r.type || ''),
      h('td', r.event || h('span.mono', r.messageId || '')),
      h('td', kind === 'source' ? (r.source || '') : (r.status ? String(r.status) : '')),
      h('td', details));
    body.prepend(tr);
    count++;
    while (body.children.length > KEEP) body.lastElementChild.remove();
    counter.textContent = `${count.toLocaleString('en-US')} received`;
  });
  const counter = h('span.muted', '0 received');
  return h('section.panel',
    h('div.live-head', h('h2', title), h('div.inline', status, counter, rate,
      h('button', { type: 'button', onclick: () => { clear(body); body.append(placeholder); count = 0; counter.textContent = '0 received'; } }, 'Clear'))),
    h('div.scroll', table));
}
