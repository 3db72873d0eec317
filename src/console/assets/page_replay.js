// Replay: choose a destination and a time range, start, watch the progress bar
// (POST /api/v1/replays, GET /api/v1/replays[/{id}], POST /api/v1/replays/{id}/cancel).
import { get, post, enc, serves } from './api.js';
import { h, pageHead, panel, empty, row, showFormError, notify, fmtNum, fmtTime, fmtSeconds } from './ui.js';

const ACTIVE = new Set(['running', 'queued', 'starting']);

function progressRow(r, mayEdit, refresh) {
  const pct = typeof r.percent === 'number' ? r.percent : r.state === 'done' ? 100 : 0;
  return h('tr', { 'data-replay': r.id, 'data-state': r.state },
    h('td', h('strong', r.destination), h('div.muted', r.source ? `from ${r.source}` : 'all its sources')),
    h('td', h('div.muted', r.from || r.to ? `${r.from ? fmtTime(r.from) : 'the oldest'} → ${r.to ? fmtTime(r.to) : 'now'}` : 'everything archived'), r.rate ? h('div.muted', `at most ${fmtNum(r.rate)}/s`) : null),
    h('td', h('progress', { max: 100, value: pct, 'aria-label': `Replay ${r.id} progress` }),
      h('div.muted', { 'data-percent': pct.toFixed(1) }, `${pct.toFixed(1)} % · ${fmtNum(r.events_done)} of ${fmtNum(r.events_imported)} events · files ${fmtNum(r.files_done)}/${fmtNum(r.files_total)}`)),
    h('td', h('span.badge', { class: r.state === 'done' ? 'ok' : r.state === 'failed' ? 'bad' : r.state === 'cancelled' ? 'warn' : '' }, r.state),
      r.error ? h('div.field-error', r.error) : null,
      ACTIVE.has(r.state) ? h('div.muted', `${fmtNum(r.events_per_second)}/s · ETA ${fmtSeconds(r.eta_seconds)}`) : null),
    h('td', h('div.muted', `delivered ${fmtNum(r.delivered)}, dead-lettered ${fmtNum(r.dead_lettered)}`)),
    h('td', mayEdit && ACTIVE.has(r.state) ? h('button', { type: 'button', onclick: async () => {
      try {
        await post(`/api/v1/replays/${enc(r.id)}/cancel`);
        refresh();
      } catch (e) {
        notify(e.message, 'error');
      }
    } }, 'Cancel') : null));
}

// datetime-local (local time, no zone) → RFC 3339 UTC; '' → undefined.
const toIso = (v) => (v ? new Date(v).toISOString() : undefined);

export async function render(ctx) {
  document.title = 'Replay · Switchyard';
  let timer;
  const schedule = (ms) => {
    clearTimeout(timer);
    if (ctx.alive()) timer = setTimeout(tick, ms);
  };
  const tick = async () => {
    let replays = [];
    try {
      replays = (await refresh()) || [];
    } catch {}
    schedule(replays.some((r) => ACTIVE.has(r.state)) ? 1000 : 10000);
  };
  ctx.main.append(pageHead('Replay', 'Send archived events to a destination again: the same replay the CLI runs (switchyard replay).'));
  if (!serves('POST /api/v1/replays')) {
    ctx.main.append(panel(null, empty('Replays are not available on this server.', 'This build does not serve /api/v1/replays yet: run switchyard replay --destination NAME on the server.')));
    return;
  }
  const mayEdit = ctx.can('edit_config');
  const [dst, src] = await Promise.all([get('/api/v1/destinations'), get('/api/v1/sources')]);
  const list = h('div');
  const refresh = async () => {
    const r = await get('/api/v1/replays');
    if (!ctx.alive()) return;
    const replays = r.replays || [];
    list.replaceChildren(replays.length
      ? h('table', { 'aria-label': 'Replays' }, h('thead', h('tr', h('th', 'Destination'), h('th', 'Range'), h('th', 'Progress'), h('th', 'State'), h('th', 'Outcome'), h('th', ''))),
        h('tbody', replays.map((x) => progressRow(x, mayEdit, refresh))))
      : empty('No replays yet.', mayEdit ? 'Choose a destination and a time range above and start one.' : 'An editor or admin can start one.'));
    return replays;
  };
  if (mayEdit) {
    const dests = dst.destinations || [];
    const destination = h('select', { id: 'destination', required: true }, h('option', { value: '' }, 'choose…'), dests.map((d) => h('option', { value: d.name }, `${d.name} (${d.type})`)));
    const source = h('select', { id: 'source' }, h('option', { value: '' }, 'every source it receives'), (src.sources || []).map((s) => h('option', { value: s.name }, s.name)));
    const from = h('input', { id: 'from', type: 'datetime-local', step: 1 });
    const to = h('input', { id: 'to', type: 'datetime-local', step: 1 });
    const rate = h('input', { id: 'rate', type: 'number', min: 1, step: 1, placeholder: 'no limit' });
    const form = h('form', { id: 'new-replay', 'aria-label': 'Start a replay' },
      row('destination', 'Destination', destination, { required: true }),
      row('source', 'Source', source),
      row('from', 'From', from, { help: 'your local time; empty: from the oldest archived event' }),
      row('to', 'To', to, { help: 'empty: up to now' }),
      row('rate', 'Rate', rate, { help: 'events per second at most' }),
      h('div.actions', h('button.primary', { type: 'submit' }, 'Start replay')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { destination: destination.value };
      if (source.value) body.source = source.value;
      if (from.value) body.from = toIso(from.value);
      if (to.value) body.to = toIso(to.value);
      if (rate.value) body.rate = Number(rate.value);
      try {
        const r = await post('/api/v1/replays', body);
        notify(`Replay ${r.id} started`);
        await refresh();
        schedule(1000);
      } catch (e) {
        showFormError(form, e);
      }
    });
    if (!dests.length) ctx.main.append(panel('Start a replay', empty('No destinations.', 'A replay sends archived events to a destination: add one first.')));
    else ctx.main.append(panel('Start a replay', form));
  }
  ctx.main.append(panel('Replays', list));
  await refresh();
  // Poll every second while one runs, every 10 s otherwise.
  ctx.onLeave(() => clearTimeout(timer));
  schedule(1000);
}
