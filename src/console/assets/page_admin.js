// Admins only: users, API tokens, the audit log.
import { get, post, patch, del, enc } from './api.js';
import { h, pageHead, panel, empty, row, showFormError, notify, confirmText, copyButton, fmtTime } from './ui.js';

const ROLES = ['viewer', 'editor', 'admin'];
const roleSelect = (id, value) => h('select', { id }, ROLES.map((r) => h('option', { value: r, selected: r === value }, r)));

export async function renderUsers(ctx) {
  document.title = 'Users · Switchyard';
  ctx.main.append(pageHead('Users', 'People who sign in to the console. Viewers read; editors also change sources and destinations; admins also manage users, tokens and read the audit log.'));
  const box = h('div');
  ctx.main.append(box);
  const draw = async () => {
    const users = (await get('/api/v1/users')).users || [];
    box.replaceChildren(panel(null, h('table', { 'aria-label': 'Users' },
      h('thead', h('tr', h('th', 'Name'), h('th', 'Role'), h('th', 'Created'), h('th', ''))),
      h('tbody', users.map((u) => {
        const sel = roleSelect(`role-${u.name}`, u.role);
        sel.setAttribute('aria-label', `Role of ${u.name}`);
        sel.addEventListener('change', async () => {
          try {
            await patch(`/api/v1/users/${enc(u.name)}`, { role: sel.value });
            notify(`${u.name} is now ${sel.value}`);
          } catch (e) {
            notify(e.message, 'error');
            sel.value = u.role;
          }
        });
        return h('tr', { 'data-user': u.name }, h('td', u.name, u.name === ctx.session.user ? h('span.muted', ' (you)') : null), h('td', sel), h('td', fmtTime(u.created)),
          h('td', h('button.danger', { type: 'button', onclick: async () => {
            if (!confirmText(`Remove ${u.name}? Their sessions end at once.`)) return;
            try {
              await del(`/api/v1/users/${enc(u.name)}`);
              await draw();
            } catch (e) {
              notify(e.message, 'error');
            }
          } }, 'Remove')));
      })))));
  };
  await draw();
  const name = h('input', { id: 'name', type: 'text', required: true, autocomplete: 'off' });
  const role = roleSelect('role', 'viewer');
  const password = h('input', { id: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const form = h('form', { id: 'new-user', 'aria-label': 'Add a user' },
    row('name', 'Name', name, { required: true, help: '1–64 letters, digits, _ - . @' }),
    row('role', 'Role', role),
    row('password', 'Password', password, { required: true, help: '8 characters or more; they can change it later' }),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Add user')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await post('/api/v1/users', { name: name.value, role: role.value, password: password.value });
      notify(`User ${name.value} added`);
      form.reset();
      await draw();
    } catch (e) {
      showFormError(form, e);
    }
  });
  ctx.main.append(panel('Add a user', form));
}

export async function renderTokens(ctx) {
  document.title = 'API tokens · Switchyard';
  ctx.main.append(pageHead('API tokens', 'For scripts: send Authorization: Bearer <token>. A token is shown once, when created; only its hash is kept.'));
  const shown = h('div');
  const box = h('div');
  ctx.main.append(shown, box);
  const draw = async () => {
    const tokens = (await get('/api/v1/tokens')).tokens || [];
    box.replaceChildren(panel(null, tokens.length ? h('table', { 'aria-label': 'API tokens' },
      h('thead', h('tr', h('th', 'Name'), h('th', 'Role'), h('th', 'Created'), h('th', ''))),
      h('tbody', tokens.map((t) => h('tr', { 'data-token': t.name }, h('td', t.name), h('td', t.role), h('td', fmtTime(t.created)),
        h('td', h('button.danger', { type: 'button', onclick: async () => {
          if (!confirmText(`Revoke ${t.name}? Scripts using it stop working at once.`)) return;
          try {
            await del(`/api/v1/tokens/${enc(t.name)}`);
            await draw();
          } catch (e) {
            notify(e.message, 'error');
          }
        } }, 'Revoke'))))))
      : empty('No API tokens.', 'Create one below for a script or CI job.')));
  };
  await draw();
  const name = h('input', { id: 'name', type: 'text', required: true, autocomplete: 'off' });
  const role = roleSelect('role', 'viewer');
  const form = h('form', { id: 'new-token', 'aria-label': 'Create a token' },
    row('name', 'Name', name, { required: true }), row('role', 'Role', role),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Create token')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const t = await post('/api/v1/tokens', { name: name.value, role: role.value });
      const code = h('code', { id: 'new-token-value' }, t.token);
      shown.replaceChildren(h('div.callout', { role: 'status' }, h('strong', `Token ${t.name} (${t.role}) created.`),
        h('p', 'This is the only time it is shown: copy it now.'), h('div.secret-once', code, copyButton(t.token, code, 'Copy token'))));
      form.reset();
      await draw();
    } catch (e) {
      showFormError(form, e);
    }
  });
  ctx.main.append(panel('Create a token', form));
}

function change(entry) {
  const parts = [];
  if (entry.before !== undefined || entry.after !== undefined) {
    const b = entry.before || {}, a = entry.after || {};
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => k !== 'version' && JSON.stringify(b[k]) !== JSON.stringify(a[k]));
    if (keys.length && entry.before && entry.after) parts.push(h('div.muted', `changed: ${keys.join(', ')}`));
    parts.push(h('details', h('summary', 'Before / after'),
      entry.before !== undefined ? [h('div.muted', 'before'), h('pre', JSON.stringify(entry.before, null, 2))] : null,
      entry.after !== undefined ? [h('div.muted', 'after'), h('pre', JSON.stringify(entry.after, null, 2))] : null));
  }
  return parts;
}

export async function renderAudit(ctx) {
  document.title = 'Audit log · Switchyard';
  ctx.main.append(pageHead('Audit log', 'Every change and every sign-in, newest first (data_dir/admin/audit.jsonl).'));
  const tbody = h('tbody');
  const more = h('div.actions');
  ctx.main.append(panel(null, h('table', { 'aria-label': 'Audit log' },
    h('thead', h('tr', h('th', 'When'), h('th', 'Who'), h('th', 'Action'), h('th', 'Target'), h('th', 'Client'), h('th.num', 'Status'), h('th', 'Change'))), tbody), more));
  const load = async (before) => {
    const page = await get(`/api/v1/audit?limit=50${before !== undefined ? `&before=${before}` : ''}`);
    for (const e of page.entries || []) {
      tbody.append(h('tr', { 'data-action': e.action }, h('td', fmtTime(e.time)), h('td', e.actor, h('div.muted', e.role || '')), h('td.mono', e.action),
        h('td', e.target || ''), h('td.mono', e.client || ''), h('td.num', e.status ?? ''), h('td', change(e))));
    }
    if (!tbody.children.length) tbody.append(h('tr', h('td', { colspan: 7 }, empty('Nothing recorded yet.', 'Changes and sign-ins appear here as they happen.'))));
    more.replaceChildren(page.next_before !== null && page.next_before !== undefined
      ? h('button', { type: 'button', onclick: () => load(page.next_before) }, 'Older entries') : h('span.muted', 'That is everything.'));
  };
  await load();
}
