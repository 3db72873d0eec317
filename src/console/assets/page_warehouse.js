// Warehouse: per warehouse destination, the last loads, tables and row counts, discards; "Sync
// now" (GET /api/v1/warehouse, POST /api/v1/destinations/{name}/sync).
import { get, post, enc, serves } from './api.js';
import { h, pageHead, panel, empty, notify, fmtNum, fmtTime } from './ui.js';

export async function render(ctx) {
  document.title = 'Warehouse · Switchyard';
  ctx.main.append(pageHead('Warehouse', 'SQL destinations (PostgreSQL, SQLite): loads, tables and rows, discarded events.'));
  if (!serves('GET /api/v1/warehouse')) {
    ctx.main.append(panel(null, empty('Not available on this server.', 'This build does not serve GET /api/v1/warehouse yet: switchyard warehouse sync reports loads meanwhile.')));
    return;
  }
  const box = h('div');
  ctx.main.append(box);
  const mayEdit = ctx.can('edit_config');
  const draw = async () => {
    const w = await get('/api/v1/warehouse');
    if (!ctx.alive()) return;
    const list = w.warehouses || [];
    if (!list.length) {
      box.replaceChildren(panel(null, empty('No warehouse destinations.', 'Add a PostgreSQL or SQLite destination from the catalogue; its loads and tables show here.',
        h('a.button', { href: '/catalogue' }, 'Open the catalogue'))));
      return;
    }
    box.replaceChildren(...list.map((x) => h('section.panel', { 'data-warehouse': x.destination },
      h('div.live-head', h('h2', h('a', { href: `/destinations/${enc(x.destination)}` }, x.destination), ' ', h('span.muted', `(${x.type})`), ' ',
        h('span.badge', { class: x.enabled ? 'ok' : '' }, x.enabled ? 'on' : 'off')),
      mayEdit ? h('button', { type: 'button', onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          const r = await post(`/api/v1/destinations/${enc(x.destination)}/sync`);
          notify(`${x.destination}: ${fmtNum(r.loaded)} events loaded`);
          await draw();
        } catch (e) {
          notify(e.message, 'error');
        }
      } }, 'Sync now') : null),
      h('div.grid',
        h('div', h('h3', 'Last loads'), (x.loads || []).length ? h('table', { 'aria-label': `Last loads of ${x.destination}` },
          h('thead', h('tr', h('th', 'Finished'), h('th', 'Source'), h('th.num', 'Events'), h('th.num', 'Rows'), h('th.num', 'Tables'), h('th.num', 'Took'), h('th', 'Error'))),
          h('tbody', x.loads.map((l) => h('tr', { class: l.error ? 'failed' : '' },
            h('td', fmtTime(l.finished)), h('td', l.source), h('td.num', fmtNum(l.events)), h('td.num', fmtNum(l.rows)),
            h('td.num', fmtNum(l.tables)), h('td.num', `${fmtNum(l.duration_ms)} ms`), h('td', l.error || h('span.muted', 'none'))))))
          : empty('No loads yet.', 'The first load runs after sync_interval, or now with Sync now.')),
        h('div', h('h3', 'Tables'), (x.tables || []).length ? h('table', { 'aria-label': `Tables of ${x.destination}` },
          h('thead', h('tr', h('th', 'Source'), h('th', 'Table'), h('th.num', 'Rows'), h('th.num', 'Loaded since start'))),
          h('tbody', x.tables.map((t) => h('tr', h('td', t.source), h('td.mono', t.name), h('td.num', t.rows === null ? '–' : fmtNum(t.rows)), h('td.num', fmtNum(t.rows_loaded))))))
          : empty('No tables yet.', 'Tables are created by the first load.'),
        x.rows_method ? h('p.muted', `Rows as the database estimates them cheaply (${x.rows_method}), read every 10 s at most.`) : null,
        x.tables_error ? h('div.callout.error', { role: 'alert' }, `The database could not be read: ${x.tables_error}`) : null)),
      h('div.figures',
        h('div.figure', { 'data-figure': 'discards' }, h('div.n', fmtNum(x.discards)), h('div.l', 'discards since start')),
        h('div.figure', h('div.n', x.discards_in_warehouse === null ? '–' : fmtNum(x.discards_in_warehouse)), h('div.l', 'rows in discards tables')),
        h('div.figure', h('div.n', fmtNum(x.loads_ok)), h('div.l', 'loads')),
        h('div.figure', h('div.n', fmtNum(x.loads_failed)), h('div.l', 'failed loads'))),
      h('p.muted', 'Discards: values not stored in their column, and events the database refused, kept in each source\'s discards table (docs/warehouse.md).'))));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 15000);
  ctx.onLeave(() => clearInterval(timer));
}
