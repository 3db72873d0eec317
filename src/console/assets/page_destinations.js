// Destinations: the list, the catalogue of types (a settings form generated from each type's
// settings table), and one destination in tabs: activity (stats, recent errors), live attempts,
// dead letters, settings (routing, settings with provenance, filters).
import { get, post, patch, del, request, enc, serves } from './api.js';
import { h, clear, pageHead, panel, empty, toggle, origin, secretState, fmtNum, fmtTime, fmtSeconds, row, showFormError, notify, confirmText } from './ui.js';
import { settingRow, readSettings } from './settings_form.js';
import { lineChart } from './chart.js';
import { livePanel } from './live.js';

let typesCache = null;
async function types() {
  if (!typesCache) typesCache = (await get('/api/v1/destination-types')).types || [];
  return typesCache;
}

function sourceChecks(all, chosen, disabled) {
  if (!all.length) return h('span.muted', 'No sources yet: create one first (Sources).');
  return h('div.checks', { role: 'group', 'aria-label': 'Sources' }, all.map((s) =>
    h('label', h('input', { type: 'checkbox', name: 'sources', value: s.name, checked: chosen.includes(s.name), disabled }), s.name)));
}
const checkedSources = (el) => [...el.querySelectorAll('input[name="sources"]:checked')].map((i) => i.value);

export async function renderList(ctx) {
  document.title = 'Destinations · Switchyard';
  const { body } = await request('GET', '/api/v1/destinations');
  const mayEdit = ctx.can('edit_config');
  ctx.main.append(pageHead('Destinations', 'Where events go: each destination receives the sources it lists, with retries and dead letters.',
    h('a.button.primary', { href: '/catalogue' }, mayEdit ? 'Add destination' : 'Destination types')));
  const list = body.destinations || [];
  if (!list.length) {
    ctx.main.append(panel(null, empty('No destinations yet.', 'Pick a type in the catalogue, fill in its settings and choose the sources it receives.',
      h('a.button', { href: '/catalogue' }, 'Open the catalogue'))));
    return;
  }
  ctx.main.append(panel(null, h('table', { 'aria-label': 'Destinations' },
    h('thead', h('tr', h('th', 'Name'), h('th', 'Type'), h('th', 'Enabled'), h('th', 'Sources'), h('th', 'Defined in'))),
    h('tbody', list.map((d) => h('tr', { 'data-destination': d.name },
      h('td', h('a', { href: `/destinations/${enc(d.name)}` }, d.name)),
      h('td', d.type),
      h('td', toggle((on) => (on ? 'On' : 'Off'), d.enabled, async (on) => {
        await patch(`/api/v1/destinations/${enc(d.name)}`, { enabled: on });
        notify(`${d.name} ${on ? 'switched on' : 'switched off'}`);
      }, { disabled: !mayEdit })),
      h('td', (d.sources || []).join(', ') || h('span.muted', 'none')),
      h('td', Object.values(d.origin || {}).includes('console') ? origin({ x: 'console' }, 'x') : origin({ x: 'file' }, 'x'))))))));
  if (body.notes && body.notes.length) ctx.main.append(h('div.callout.warn', h('strong', 'Notes'), h('ul', body.notes.map((n) => h('li', typeof n === 'string' ? n : JSON.stringify(n))))));
}

export async function renderCatalogue(ctx) {
  document.title = 'Catalogue · Destinations · Switchyard';
  const all = await types();
  const mayEdit = ctx.can('edit_config');
  ctx.main.append(pageHead('Destination catalogue', 'Every destination type this binary can deliver to. Pick one to set it up.',
    h('a', { href: '/destinations' }, '← Destinations')));
  ctx.main.append(h('div.cards', all.map((t) => h('article.card', { 'data-type': t.type },
    h('h2', t.display_name), h('p', t.description),
    h('div.muted', `${t.type} · ${t.settings.length} setting${t.settings.length === 1 ? '' : 's'} (${t.settings.filter((s) => s.required).length} required)`),
    h('div.actions', mayEdit ? h('a.button.primary', { href: `/catalogue/${enc(t.type)}`, 'aria-label': `Set up ${t.display_name}` }, 'Set up')
      : h('span.muted', 'an editor or admin can set it up'))))));
}

export async function renderNew(ctx) {
  const all = await types();
  const t = all.find((x) => x.type === ctx.params.type);
  if (!t) {
    ctx.main.append(h('h1', 'Unknown destination type'), h('p', h('a', { href: '/catalogue' }, 'Back to the catalogue')));
    return;
  }
  document.title = `New ${t.display_name} · Switchyard`;
  const sources = (await get('/api/v1/sources')).sources || [];
  ctx.main.append(pageHead(`New ${t.display_name} destination`, t.description, h('a', { href: '/catalogue' }, '← Catalogue')));
  const name = h('input', { id: 'name', type: 'text', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_.@\\-]{1,64}' });
  const enabled = h('input', { id: 'enabled', type: 'checkbox' });
  const privateNet = h('input', { id: 'allow_private_network', type: 'checkbox' });
  const srcBox = sourceChecks(sources, sources.length === 1 ? [sources[0].name] : [], false);
  const rows = t.settings.map((s) => settingRow(s, undefined, null));
  const form = h('form', { id: 'new-destination', 'aria-label': `New ${t.display_name} destination` },
    row('name', 'Name', name, { required: true, help: 'how it is called in the console, the API, metrics and logs' }),
    row('sources', 'Sources', srcBox, { help: 'the sources whose events it receives' }),
    row('enabled', 'Start delivering', enabled, { help: 'unchecked: created switched off; switch it on from its page when ready' }),
    row('allow_private_network', 'Private addresses', privateNet, { help: 'allow loopback and private-network addresses (e.g. a sink on this machine)' }),
    h('h3', 'Settings'),
    rows.length ? rows.map((r) => r.el) : h('p.muted', 'This type has no settings.'),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Create destination'), h('a', { href: '/catalogue' }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const body = { name: name.value, type: t.type, sources: checkedSources(srcBox), enabled: enabled.checked, settings: readSettings(rows) };
      if (privateNet.checked) body.allow_private_network = true;
      const d = await post('/api/v1/destinations', body);
      notify(`Destination ${d.name} created${d.enabled ? '' : ' (switched off)'}`);
      ctx.navigate(`/destinations/${enc(d.name)}`);
    } catch (e) {
      showFormError(form, e);
    }
  });
  ctx.main.append(panel(null, form));
}

const TABS = [['activity', 'Activity'], ['live', 'Live'], ['dlq', 'Dead letters'], ['settings', 'Settings']];

export async function renderOne(ctx) {
  const name = ctx.params.name;
  const tab = TABS.some(([k]) => k === ctx.query.get('tab')) ? ctx.query.get('tab') : 'activity';
  document.title = `${name} · Destinations · Switchyard`;
  const { body: d, etag } = await request('GET', `/api/v1/destinations/${enc(name)}`);
  const mayEdit = ctx.can('edit_config');
  ctx.main.append(pageHead(`${d.name}`, h('span', h('a', { href: '/destinations' }, '← Destinations'), ` · ${d.type} · receives ${(d.sources || []).join(', ') || 'no source'}`),
    toggle((on) => (on ? 'Switched on' : 'Switched off'), d.enabled, async (on) => {
      await patch(`/api/v1/destinations/${enc(name)}`, { enabled: on });
      notify(`${name} ${on ? 'switched on' : 'switched off'}`);
      d.enabled = on;
      for (const fn of d.onSwitch || []) fn();
    }, { disabled: !mayEdit }),
    mayEdit ? h('button.danger', { type: 'button', onclick: async () => {
      if (!confirmText(`Delete destination ${name}? Its cursor and dead letters stay on disk.`)) return;
      try {
        await del(`/api/v1/destinations/${enc(name)}`);
        ctx.navigate('/destinations');
      } catch (e) {
        notify(e.message, 'error');
      }
    } }, 'Delete') : null));
  ctx.main.append(h('nav.tabs', { 'aria-label': 'Destination' }, TABS.map(([k, label]) =>
    h('a', { href: `/destinations/${enc(name)}?tab=${k}`, 'aria-current': k === tab ? 'page' : false }, label))));
  if (tab === 'activity') await activity(ctx, d);
  else if (tab === 'live') ctx.main.append(livePanel(ctx, 'destination', name));
  else if (tab === 'dlq') await deadLetters(ctx, d);
  else settingsTab(ctx, d, etag, mayEdit);
}

// Stats (per minute), latency, backlog; recent errors from the dead letters.
async function activity(ctx, d) {
  const slot = h('div');
  const windowSel = h('select', { id: 'window', 'aria-label': 'Window' }, [['15m', 'last 15 minutes'], ['1h', 'last hour'], ['6h', 'last 6 hours']]
    .map(([v, l]) => h('option', { value: v, selected: v === (ctx.query.get('window') || '1h') }, l)));
  const errors = h('div');
  ctx.main.append(h('section.panel', h('div.live-head', h('h2', 'Delivery'), windowSel), slot), panel('Recent errors', errors));
  const load = async () => {
    if (!d.enabled) {
      slot.replaceChildren(empty('Switched off.', 'A destination that is switched off delivers nothing and keeps its place in the log: switch it on to resume from there.'));
      return;
    }
    try {
      const st = await get(`/api/v1/destinations/${enc(d.name)}/stats?window=${windowSel.value}`);
      if (!ctx.alive()) return;
      const t = st.totals || {};
      const lat = st.latency_ms || {};
      slot.replaceChildren(
        h('div.figures',
          [['delivered', 'delivered'], ['retried', 'retried'], ['failed', 'failed'], ['dead_lettered', 'dead-lettered'], ['filtered', 'filtered']]
            .map(([k, l]) => h('div.figure', { 'data-figure': k }, h('div.n', fmtNum(t[k])), h('div.l', l))),
          h('div.figure', h('div.n', lat.p50 === null || lat.p50 === undefined ? '–' : `≤ ${lat.p50} ms`), h('div.l', 'p50 latency')),
          h('div.figure', h('div.n', lat.p95 === null || lat.p95 === undefined ? '–' : `≤ ${lat.p95} ms`), h('div.l', 'p95 latency')),
          st.backlog ? h('div.figure', h('div.n', `${fmtNum(st.backlog.events)}`), h('div.l', `backlog (${fmtSeconds(st.backlog.seconds)} behind)`)) : null),
        lineChart(`${d.name}: events per minute`, st.minutes || [], [
          { key: 'delivered', label: 'delivered' }, { key: 'retried', label: 'retried' }, { key: 'failed', label: 'failed' },
          { key: 'dead_lettered', label: 'dead-lettered' }, { key: 'filtered', label: 'filtered' }]));
    } catch (e) {
      if (e.status === 404) slot.replaceChildren(empty('No figures yet.', 'The destination has not run since the server started; figures appear once it delivers.'));
      else slot.replaceChildren(h('div.callout.error', e.message));
    }
  };
  windowSel.addEventListener('change', load);
  d.onSwitch = [load];
  await load();
  const timer = setInterval(load, 10000);
  ctx.onLeave(() => clearInterval(timer));
  if (!serves('GET /api/v1/destinations/{name}/dlq')) {
    errors.append(empty('Not available on this server.', 'This build does not list dead letters over the API yet: switchyard dlq list shows them.'));
    return;
  }
  const page = await get(`/api/v1/destinations/${enc(d.name)}/dlq?limit=1000`);
  const recent = (page.entries || []).slice(-10).reverse();
  if (!recent.length) errors.append(empty('No errors.', 'Nothing is dead-lettered. Retries in progress show in the Live tab.'));
  else errors.append(h('table', h('thead', h('tr', h('th', 'Dead-lettered'), h('th', 'Message'), h('th', 'Status'), h('th', 'Reason'))),
    h('tbody', recent.map((e) => h('tr', h('td', fmtTime(e.dead_lettered_at)), h('td.mono', e.message_id), h('td', e.last_status ?? ''), h('td', e.reason))))),
  h('p', h('a', { href: `/destinations/${enc(d.name)}?tab=dlq` }, `All ${fmtNum(page.total)} dead letters`)));
}

async function deadLetters(ctx, d) {
  const box = h('div');
  ctx.main.append(box);
  if (!serves('GET /api/v1/destinations/{name}/dlq')) {
    box.append(panel('Dead letters', empty('Not available on this server.', 'This build does not serve the dead-letter routes yet: use switchyard dlq list / redrive / purge.')));
    return;
  }
  const mayEdit = ctx.can('edit_config');
  let after = null;
  const draw = async () => {
    const q = after ? `&after=${enc(after)}` : '';
    const page = await get(`/api/v1/destinations/${enc(d.name)}/dlq?limit=100${q}`);
    if (!ctx.alive()) return;
    const entries = page.entries || [];
    const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    const checks = entries.map((e) => h('input', { type: 'checkbox', name: 'dlq-id', value: e.id, 'aria-label': `Select ${e.message_id}` }));
    selectAll.addEventListener('change', () => checks.forEach((c) => (c.checked = selectAll.checked)));
    const chosen = () => checks.filter((c) => c.checked).map((c) => c.value);
    const act = async (what, fn) => {
      try {
        const r = await fn();
        notify(what(r));
        await draw();
      } catch (e) {
        notify(e.message, 'error');
      }
    };
    const buttons = mayEdit ? h('div.actions',
      h('button.primary', { type: 'button', disabled: !entries.length, onclick: () => act((r) => `Redrive: ${r.delivered} delivered, ${r.kept} kept`,
        () => post(`/api/v1/destinations/${enc(d.name)}/dlq/redrive`, {})) }, 'Redrive all'),
      h('button', { type: 'button', disabled: !entries.length, onclick: () => {
        const ids = chosen();
        if (!ids.length) return notify('Select letters first', 'error');
        act((r) => `Redrive: ${r.delivered} delivered, ${r.kept} kept`, () => post(`/api/v1/destinations/${enc(d.name)}/dlq/redrive`, { ids }));
      } }, 'Redrive selected'),
      h('button.danger', { type: 'button', disabled: !entries.length, onclick: () => {
        const ids = chosen();
        if (!ids.length) return notify('Select letters first', 'error');
        if (!confirmText(`Purge ${ids.length} dead letter(s)? They cannot be sent again.`)) return;
        act((r) => `Purged ${r.purged}`, () => del(`/api/v1/destinations/${enc(d.name)}/dlq`, { ids }));
      } }, 'Purge selected'),
      h('button', { type: 'button', onclick: () => draw() }, 'Refresh')) : h('div.actions', h('button', { type: 'button', onclick: () => draw() }, 'Refresh'));
    box.replaceChildren(h('section.panel', { 'data-dlq-total': page.total },
      h('div.live-head', h('h2', `Dead letters (${fmtNum(page.total)})`), buttons),
      entries.length ? h('div.scroll', h('table', { 'aria-label': 'Dead letters' },
        h('thead', h('tr', h('th', selectAll), h('th', 'Message'), h('th', 'Source'), h('th', 'Received'), h('th', 'Dead-lettered'), h('th.num', 'Attempts'), h('th', 'Last error'))),
        h('tbody', entries.map((e, i) => h('tr', { 'data-dlq-id': e.id },
          h('td', checks[i]), h('td.mono', e.message_id), h('td', e.source), h('td', fmtTime(e.received_at)), h('td', fmtTime(e.dead_lettered_at)),
          h('td.num', e.attempts),
          h('td', h('div', e.last_status ? `HTTP ${e.last_status}: ` : '', e.reason),
            h('details', h('summary', 'Inspect'),
              e.last_response ? [h('div.muted', 'Last response'), h('pre', e.last_response)] : null,
              e.payload !== undefined ? [h('div.muted', 'Event'), h('pre', JSON.stringify(e.payload, null, 2))] : h('div.muted', 'Payload hidden for your role.'))))))))
        : empty('No dead letters.', 'Events that exhaust their retries, or that the destination refuses for good, land here; redrive them once the cause is fixed.'),
      page.next_after || after ? h('div.actions',
        after ? h('button', { type: 'button', onclick: () => { after = null; draw(); } }, 'First page') : null,
        page.next_after ? h('button', { type: 'button', onclick: () => { after = page.next_after; draw(); } }, 'Next page') : null) : null));
  };
  await draw();
}

function settingsTab(ctx, d, etag, mayEdit) {
  types().then(async (all) => {
    if (!ctx.alive()) return;
    const t = all.find((x) => x.type === d.type) || { settings: [] };
    const sources = (await get('/api/v1/sources')).sources || [];
    let version = etag;
    const save = async (form, body) => {
      try {
        const r = await request('PATCH', `/api/v1/destinations/${enc(d.name)}`, body, { ifMatch: version });
        version = r.etag || version;
        notify('Saved');
        ctx.navigate(`/destinations/${enc(d.name)}?tab=settings`, { replace: true });
      } catch (e) {
        if (e.status === 412) notify('Someone changed this destination meanwhile: reload the page to see their change.', 'error');
        else showFormError(form, e);
      }
    };
    // Routing.
    const srcBox = sourceChecks(sources, d.sources || [], !mayEdit);
    const routing = h('form', { id: 'routing', 'aria-label': 'Routing' },
      row('sources', 'Sources', srcBox, { originBadge: origin(d.origin, 'sources'), help: 'the sources whose events it receives' }),
      mayEdit ? h('div.actions', h('button.primary', { type: 'submit' }, 'Save routing')) : null);
    routing.addEventListener('submit', (ev) => {
      ev.preventDefault();
      save(routing, { sources: checkedSources(srcBox) });
    });
    // Settings.
    const rows = t.settings.map((s) => settingRow(s, (d.settings || {})[s.name] ?? (s.secret ? { set: false } : undefined), d.origin));
    const settingsForm = h('form', { id: 'settings', 'aria-label': 'Settings' },
      rows.length ? rows.map((r) => r.el) : h('p.muted', 'This type has no settings.'),
      mayEdit && rows.length ? h('div.actions', h('button.primary', { type: 'submit' }, 'Save settings'), h('span.muted', 'Secrets are write-only: leave one empty to keep it.')) : null);
    settingsForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      let settings;
      try {
        settings = readSettings(rows);
      } catch (e) {
        return showFormError(settingsForm, e);
      }
      if (!Object.keys(settings).length) return notify('Nothing changed');
      save(settingsForm, { settings });
    });
    if (!mayEdit) for (const el of settingsForm.querySelectorAll('input, textarea, select')) el.disabled = true;
    // Filters.
    const f = d.filters || {};
    const dropEvents = h('textarea', { id: 'filters.drop_events', rows: 3, spellcheck: 'false', disabled: !mayEdit, placeholder: 'one event name per line' });
    dropEvents.value = (f.drop_events || []).join('\n');
    const dropProps = h('textarea', { id: 'filters.drop_properties', rows: 3, spellcheck: 'false', disabled: !mayEdit, placeholder: 'one property path per line' });
    dropProps.value = (f.drop_properties || []).join('\n');
    const lines = (el) => el.value.split('\n').map((x) => x.trim()).filter(Boolean);
    const filters = h('form', { id: 'filters', 'aria-label': 'Filters' },
      row('filters.drop_events', 'Drop events', dropEvents, { originBadge: origin(d.origin, 'filters.drop_events') || origin(d.origin, 'filters'), help: 'events with these names are not sent (counted as filtered)' }),
      row('filters.drop_properties', 'Drop properties', dropProps, { originBadge: origin(d.origin, 'filters.drop_properties'), help: 'these properties are removed before sending' }),
      mayEdit ? h('div.actions', h('button.primary', { type: 'submit' }, 'Save filters')) : null);
    filters.addEventListener('submit', (ev) => {
      ev.preventDefault();
      save(filters, { filters: { drop_events: lines(dropEvents), drop_properties: lines(dropProps) } });
    });
    const general = h('table', h('tbody',
      [['type', d.type], ['allow_private_network', String(d.allow_private_network)], ['retry_window', d.retry_window], ['timeout', d.timeout],
        ['ordering', d.ordering], ['batch', d.batch ? `${d.batch.max_events} events, ${d.batch.max_bytes} bytes, ${d.batch.max_wait}` : '']]
        .map(([k, v]) => h('tr', h('th', k), h('td', v ?? '', ' ', origin(d.origin, k)))),
      h('tr', h('th', 'version'), h('td.mono', d.version))));
    ctx.main.append(
      h('p.muted', 'Badges say where each value comes from: ', origin({ x: 'file' }, 'x'), ' the YAML file, ', origin({ x: 'console' }, 'x'),
        ' a change made here (stored in data_dir, layered over the file). Values without a badge are defaults.'),
      panel('Routing', routing), panel(`Settings (${t.display_name || d.type})`, settingsForm), panel('Filters', filters), panel('Delivery options', general));
  }).catch((e) => ctx.main.append(h('div.callout.error', e.message)));
}
