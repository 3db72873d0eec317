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

function destinationsTable(rows) {
  if (!rows.length) return empty('No destinations yet.', 'Add one from the catalogue to start delivering events.', h('a.button', { href: '/catalogue' }, 'Open the catalogue'));
  return h('table', { 'aria-label': 'Destination health' },
    h('thead', h('tr', h('th', 'Destination'), h('th', 'State'), h('th.num', 'Backlog'), h('th', 'Behind'), h('th', 'Last error'))),
    h('tbody', rows.map((d) => h('tr', { 'data-destination': d.name },
      h('td', h('a', { href: `/destinations/${enc(d.name)}` }, d.name), h('div.muted', d.type)),
      h('td', !d.enabled ? h('span.badge', 'off') : d.healthy === false ? health(false, 'failing') : d.healthy === true ? health(true, 'healthy') : h('span.badge', 'on')),
      h('td.num', fmtNum(d.backlog_events)),
      h('td', fmtSeconds(d.backlog_seconds)),
      h('td', d.last_error ? h('span', h('span.muted', fmtTime(d.last_error.at) + ' '), d.last_error.message) : h('span.muted', 'none'))))));
}

function sourcesTable(rows) {
  if (!rows.length) return empty('No sources yet.', 'Create a source to get a write key and the snippet for your pages.', h('a.button', { href: '/sources' }, 'Sources'));
  return h('table', { 'aria-label': 'Source health' },
    h('thead', h('tr', h('th', 'Source'), h('th', 'State'), h('th.num', 'Events, last hour'))),
    h('tbody', rows.map((s) => h('tr', { 'data-source': s.name },
      h('td', h('a', { href: `/sources/${enc(s.name)}` }, s.name)),
      h('td', s.enabled ? health(true, 'enabled') : h('span.badge', 'disabled')),
      h('td.num', s.events_last_hour === undefined ? '–' : fmtNum(s.events_last_hour))))));
}

async function fromOverview() {
  const o = await get('/api/v1/overview');
  const minutes = o.minutes || [];
  const totalIn = minutes.reduce((a, m) => a + (m.in || 0), 0);
  const totalOut = minutes.reduce((a, m) => a + (m.out || 0), 0);
  const disk = o.disk || {};
  const archive = o.archive || {};
  return [
    panel('Events per minute', lineChart('Events in and out per minute', minutes, [{ key: 'in', label: 'in (stored)' }, { key: 'out', label: 'out (delivered)' }]),
      totalIn || totalOut ? null : h('p.muted', 'No events in the last hour. Send one with a source\'s snippet, or any Segment library.')),
    h('div.grid',
      panel('Sources', sourcesTable(o.sources || [])),
      panel('Disk', h('div.figures',
        h('div.figure', h('div.n', fmtBytes(disk.log_bytes)), h('div.l', 'log')),
        h('div.figure', h('div.n', fmtBytes(disk.dlq_bytes)), h('div.l', 'dead letters')),
        h('div.figure', h('div.n', fmtBytes(disk.data_dir_free_bytes)), h('div.l', 'free in data_dir'))),
        h('p', 'Archive: ', archive.enabled ? `${fmtNum(archive.pending_files)} file(s) waiting; last upload ${fmtTime(archive.last_upload)}` : h('span.muted', 'not configured')))),
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
