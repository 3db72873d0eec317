// Sources: the list, a new source, and one source (write key: copy once, rotate; the snippet;
// the enable switch; live events).
import { get, post, patch, del, request, enc } from './api.js';
import { h, pageHead, panel, empty, toggle, copyButton, origin, secretState, fmtTime, row, showFormError, notify, confirmText } from './ui.js';
import { livePanel } from './live.js';

// Switchyard's snippet (sdk/js/snippet.js), with the host and key filled in.
const SNIPPET = '!function(){var i="analytics",a=window[i]=window[i]||[];if(!a.initialized){if(a.invoked){window.console&&console.error&&console.error("Switchyard snippet included twice.");return}a.invoked=!0;a.methods=["track","identify","page","screen","group","alias","reset","ready","on","off","once","debug","setAnonymousId","addSourceMiddleware"];a.factory=function(m){return function(){var e=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(m)>-1){var c=document.querySelector("link[rel=\'canonical\']");e.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}e.unshift(m);a.push(e);return a}};for(var n=0;n<a.methods.length;n++){var k=a.methods[n];a[k]=a.factory(k)}a.load=function(key,o){var t=document.createElement("script");t.async=!0;t.src=(o&&o.cdnURL||"https://SWITCHYARD_HOST")+"/analytics.js/v1/"+encodeURIComponent(key)+"/analytics.min.js";var s=document.getElementsByTagName("script")[0];s.parentNode.insertBefore(t,s);a._loadOptions=o;a._writeKey=key};a.SNIPPET_VERSION="sy-1";a.load("YOUR_WRITE_KEY");a.page()}}();';

const HOST_KEY = 'sy-console-events-host';
function eventsHost() {
  return localStorage.getItem(HOST_KEY) || `${location.protocol}//${location.hostname}:8080`;
}

// The snippet panel; `key` is the write key when it was just shown (create, rotate), else null.
function snippetPanel(key) {
  const host = h('input', { id: 'events-host', type: 'url', value: eventsHost(), 'aria-describedby': 'events-host-help' });
  const code = h('pre', { id: 'snippet', tabindex: '0' });
  const curlCode = h('pre', { id: 'snippet-curl', tabindex: '0' });
  const fill = () => {
    const base = host.value.replace(/\/+$/, '');
    const k = key || 'YOUR_WRITE_KEY';
    code.textContent = `<script>\n${SNIPPET.replace('https://SWITCHYARD_HOST', base).replace('YOUR_WRITE_KEY', k)}\n</script>`;
    curlCode.textContent = `curl -u '${k}:' -H 'Content-Type: application/json' \\\n  -d '{"userId":"u1","event":"Signed Up"}' ${base}/v1/track`;
  };
  host.addEventListener('input', () => {
    localStorage.setItem(HOST_KEY, host.value);
    fill();
  });
  fill();
  return panel('Send events',
    h('p', key ? 'Paste this into your pages, before </head>. It holds the write key shown above.'
      : 'Paste this into your pages, before </head>, with YOUR_WRITE_KEY replaced by the source\'s write key (it is shown only when created or rotated).'),
    h('div.inline', h('label', { for: 'events-host' }, 'Events host'), host,
      h('span.muted', { id: 'events-host-help' }, 'where browsers reach the Tracking API listener')),
    h('h3', 'Browser (analytics.js snippet)'), code, h('div.actions', copyButton(() => code.textContent, code, 'Copy snippet')),
    h('h3', 'Any HTTP client'), curlCode, h('div.actions', copyButton(() => curlCode.textContent, curlCode, 'Copy command')));
}

// A key shown once, with copy.
function keyOnce(title, key, note) {
  const code = h('code', { id: 'new-write-key' }, key);
  return h('div.callout', { role: 'status' }, h('strong', title), h('p', note),
    h('div.secret-once', code, copyButton(key, code, 'Copy key')));
}

export async function renderList(ctx) {
  document.title = 'Sources · Switchyard';
  const { body } = await request('GET', '/api/v1/sources');
  const mayEdit = ctx.can('edit_config');
  ctx.main.append(pageHead('Sources', 'Where events come in: each source has a write key its clients send with.',
    mayEdit ? h('a.button.primary', { href: '#new-source' }, 'New source') : null));
  const list = body.sources || [];
  if (!list.length) {
    ctx.main.append(panel(null, empty('No sources yet.', mayEdit ? 'Create one below; its write key is shown once, with the snippet to paste.' : 'An editor or admin can create one.')));
  } else {
    ctx.main.append(panel(null, h('table', { 'aria-label': 'Sources' },
      h('thead', h('tr', h('th', 'Name'), h('th', 'Enabled'), h('th', 'Write key'), h('th', 'Previous key'), h('th', 'Rate limit'), h('th', 'Defined in'))),
      h('tbody', list.map((s) => h('tr', { 'data-source': s.name },
        h('td', h('a', { href: `/sources/${enc(s.name)}` }, s.name)),
        h('td', toggle((on) => (on ? 'On' : 'Off'), s.enabled, async (on) => {
          await patch(`/api/v1/sources/${enc(s.name)}`, { enabled: on });
          notify(`${s.name} ${on ? 'enabled' : 'disabled'}`);
        }, { disabled: !mayEdit })),
        h('td', secretState(s.write_key), ' ', origin(s.origin, 'write_key')),
        h('td', s.previous_write_key ? `works until ${fmtTime(s.previous_write_key.expires)}` : h('span.muted', 'none')),
        h('td', s.rate_limit ? JSON.stringify(s.rate_limit) : h('span.muted', 'none')),
        h('td', Object.values(s.origin || {}).includes('console') ? origin({ x: 'console' }, 'x') : origin({ x: 'file' }, 'x'))))))));
  }
  if (mayEdit) {
    const name = h('input', { id: 'name', type: 'text', required: true, pattern: '[A-Za-z0-9_.@\\-]{1,64}', autocomplete: 'off' });
    const form = h('form', { id: 'new-source' },
      row('name', 'Name', name, { required: true, help: '1–64 letters, digits, _ - . @' }),
      h('div.actions', h('button.primary', { type: 'submit' }, 'Create source')));
    const created = h('div');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const s = await post('/api/v1/sources', { name: name.value });
        created.replaceChildren(keyOnce(`Source ${s.name} created.`, s.write_key, 'This is the only time its write key is shown: copy it now.'),
          snippetPanel(s.write_key), h('p', h('a', { href: `/sources/${enc(s.name)}` }, `Open ${s.name}`)));
        form.reset();
      } catch (e) {
        showFormError(form, e);
      }
    });
    ctx.main.append(panel('New source', form), created);
  }
}

export async function renderOne(ctx) {
  const name = ctx.params.name;
  document.title = `${name} · Sources · Switchyard`;
  const { body: s } = await request('GET', `/api/v1/sources/${enc(name)}`);
  const mayEdit = ctx.can('edit_config');
  const shown = h('div');
  ctx.main.append(pageHead(`Source ${s.name}`, h('a', { href: '/sources' }, '← All sources'),
    toggle((on) => (on ? 'Enabled' : 'Disabled'), s.enabled, async (on) => {
      await patch(`/api/v1/sources/${enc(name)}`, { enabled: on });
      notify(`${name} ${on ? 'enabled' : 'disabled'}`);
    }, { disabled: !mayEdit }),
    mayEdit ? h('button.danger', { type: 'button', onclick: async () => {
      if (!confirmText(`Delete source ${name}? Its write key stops working at once.`)) return;
      try {
        await del(`/api/v1/sources/${enc(name)}`);
        ctx.navigate('/sources');
      } catch (e) {
        notify(e.message, 'error');
      }
    } }, 'Delete') : null));

  const grace = h('select', { id: 'grace' }, [['0s', 'stops at once'], ['1h', '1 hour'], ['24h', '24 hours (default)'], ['168h', '7 days']]
    .map(([v, l]) => h('option', { value: v, selected: v === '24h' }, l)));
  const keyPanel = panel('Write key',
    h('p', 'Write key: ', secretState(s.write_key), ' ', origin(s.origin, 'write_key'),
      ' · stored as a hash: it is shown once, when created or rotated.'),
    s.previous_write_key ? h('p', 'The previous key keeps working until ', h('strong', fmtTime(s.previous_write_key.expires)), '.') : null,
    mayEdit ? h('form.inline', { id: 'rotate', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await post(`/api/v1/sources/${enc(name)}/rotate-key`, { grace: grace.value });
        shown.replaceChildren(keyOnce('New write key.', r.write_key,
          r.previous_write_key ? `The old key keeps working until ${fmtTime(r.previous_write_key.expires)}. This is the only time the new one is shown.` : 'The old key no longer works. This is the only time the new one is shown.'),
        snippetPanel(r.write_key));
        snippetSlot.replaceChildren();
      } catch (e) {
        notify(e.message, 'error');
      }
    } }, h('label', { for: 'grace' }, 'Old key keeps working'), grace, h('button', { type: 'submit' }, 'Rotate key')) : null);
  const snippetSlot = h('div', snippetPanel(null));
  ctx.main.append(shown, keyPanel, livePanel(ctx, 'source', name), snippetSlot);
}
