// Overview: events in and out per minute, per-source and per-destination health, backlog, disk.
// From GET /api/v1/overview where the server has it; otherwise assembled from the sources, the
// destinations and each destination's delivery figures (events out only).
import { get, enc, serves } from './api.js';
import { h, pageHead, panel, empty, fmtNum, fmtBytes, fmtSeconds, fmtTime } from './ui.js';
import { lineChart } from './chart.js';

const health = (ok, text) => h('span.badge', { class: ok ? 'ok' : 'bad' }, text);

export async function render(ctx) {
  document.title = 'Overview · Switchyard';
  const body = h('div');
  ctx.main.append(pageHead('Overview', 'The last hour, refreshed every 10 seconds.'), body);
  const load = serves('GET /api/v1/overview') ? () => fromOverview(ctx) : () => assembled(ctx);
  const draw = async () => {
    try {
      const parts = await load();
      if (ctx.alive()) body.replaceChildren(...parts);
    } catch (e) {
      if (e.status !== 401 && ctx.alive()) body.replaceChildren(h('div.callout.error', { role: 'alert' }, e.message));
    }
  };
  await draw();
  const timer = setInterval(draw, 10000);
  ctx.onLeave(() => clearInterval(timer));
}

const STATE_TEXT = { ok: 'healthy', failing: 'failing', credentials_refused: 'credentials refused', stopped: 'stopped', disabled: 'off' };

function stateBadge(d) {
  if (d.state) return d.state === 'disabled' ? h('span.badge', 'off') : health(d.state === 'ok', STATE_TEXT[d.state] || d.state);
  return !d.enabled ? h('span.badge', 'off') : d.healthy === false ? health(false, 'failing') : d.healthy === true ? health(true, 'healthy') : h('span.badge', 'on');
}

function destinationsTable(rows) {
  if (!rows.length) return empty('No destinations yet.', 'Add one from the catalogue to start delivering events.', h('a.button', { href: '/catalogue' }, 'Open the catalogue'));
  return h('table', { 'aria-label': 'Destination health' },
    h('thead', h('tr', h('th', 'Destination'), h('th', 'State'), h('th.num', 'Delivered, last hour'), h('th.num', 'Backlog'), h('th', 'Behind'), h('th', 'Last error'))),
    h('tbody', rows.map((d) => h('tr', { 'data-destination': d.name },
      h('td', h('a', { href: `/destinations/${enc(d.name)}` }, d.name), h('div.muted', d.type)),
      h('td', stateBadge(d)),
      h('td.num', d.delivered_last_hour === undefined ? '–' : fmtNum(d.delivered_last_hour)),
      h('td.num', d.backlog_events === null || d.backlog_events === undefined ? '–' : fmtNum(d.backlog_events)),
      h('td', d.backlog_seconds === null || d.backlog_seconds === undefined ? '–' : fmtSeconds(d.backlog_seconds)),
      h('td', d.reason ? d.reason : h('span.muted', 'none'))))));
}

function sourcesTable(rows) {
  if (!rows.length) return empty('No sources yet.', 'Create a source to get a write key and the snippet for your pages.', h('a.button', { href: '/sources' }, 'Sources'));
  return h('table', { 'aria-label': 'Source health' },
    h('thead', h('tr', h('th', 'Source'), h('th', 'State'), h('th', 'Last event'), h('th.num', 'Events since start'))),
    h('tbody', rows.map((s) => h('tr', { 'data-source': s.name },
      h('td', h('a', { href: `/sources/${enc(s.name)}` }, s.name)),
      h('td', s.enabled ? health(true, 'enabled') : h('span.badge', 'disabled')),
      h('td', s.last_event ? fmtTime(s.last_event) : h('span.muted', 'none since the server started')),
      h('td.num', s.events_since_start === undefined ? '–' : fmtNum(s.events_since_start))))));
}

// One directory's use: "lower bound" when the walk stopped at its cap.
function dirFigure(label, f) {
  return h('div.figure', h('div.n', f ? fmtBytes(f.bytes) : '–'), h('div.l', label, f && f.complete === false ? ' (at least)' : ''));
}

async function fromOverview() {
  const o = await get('/api/v1/overview');
  const minutes = o.minutes || [];
  const totals = o.totals || {};
  const disk = o.disk || {};
  const archive = o.archive || {};
  return [
    panel('Events per minute', h('div.figures',
      h('div.figure', { 'data-figure': 'in' }, h('div.n', fmtNum(totals.in)), h('div.l', 'events in, last hour')),
      h('div.figure', { 'data-figure': 'out' }, h('div.n', fmtNum(totals.out)), h('div.l', 'delivered, last hour'))),
    lineChart('Events in and out per minute', minutes, [{ key: 'in', label: 'in (stored)' }, { key: 'out', label: 'out (delivered)' }]),
    totals.in || totals.out ? null : h('p.muted', 'No events in the last hour. Send one with a source\'s snippet, or any Segment library.')),
    h('div.grid',
      panel('Sources', sourcesTable(o.sources || [])),
      panel('Disk', h('div.figures', { 'data-panel': 'disk' },
        dirFigure('log', disk.log),
        dirFigure('dead letters', disk.dlq),
        h('div.figure', h('div.n', fmtBytes(disk.data_dir_free_bytes)), h('div.l', 'free in data_dir')),
        archive.local ? dirFigure('archive (local)', archive.local) : null),
        h('p', 'Archive: ', archive.enabled ? (archive.store === 's3' ? 'S3 (its size is the bucket\'s to tell)' : 'a local directory') : h('span.muted', 'not configured')))),
    panel('Destinations', destinationsTable(o.destinations || [])),
  ];
}

// Without /api/v1/overview: events out per minute summed over each running destination's
// figures; no events-in figure, no disk.
async function assembled(ctx) {
  const [src, dst] = await Promise.all([get('/api/v1/sources'), get('/api/v1/destinations')]);
  const destinations = dst.destinations || [];
  const byMinute = new Map();
  const rows = [];
  for (const d of destinations) {
    const row = { name: d.name, type: d.type, enabled: d.enabled };
    rows.push(row);
    if (!d.enabled) continue;
    try {
      const st = await get(`/api/v1/destinations/${enc(d.name)}/stats?window=1h`);
      for (const m of st.minutes || []) byMinute.set(m.start, (byMinute.get(m.start) || 0) + (m.delivered || 0));
      const t = st.totals || {};
      row.healthy = !(t.dead_lettered || t.failed) || (t.delivered || 0) > 0;
      if (st.backlog) {
        row.backlog_events = st.backlog.events;
        row.backlog_seconds = st.backlog.seconds;
      }
    } catch (e) {
      if (e.status !== 404) throw e;  // 404: it has not run since the server started
    }
  }
  const minutes = [...byMinute.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([start, out]) => ({ start, out }));
  return [
    panel('Events delivered per minute', minutes.length ? lineChart('Events delivered per minute', minutes, [{ key: 'out', label: 'out (delivered)' }])
      : empty('No delivery figures yet.', 'Switch a destination on and send events; figures appear per minute.'),
    h('p.muted', 'Events received per minute and disk use need GET /api/v1/overview, which this server does not serve yet.')),
    h('div.grid', panel('Sources', sourcesTable(src.sources || [])), panel('Destinations', destinationsTable(rows))),
  ];
}
