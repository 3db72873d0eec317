// The console's shell: session, navigation (history API; real links), and the page router.
// A page is a module exporting `render(ctx)`; ctx = {main, params, session, can, navigate,
// onLeave}. Whatever a page starts (polling, live streams) it stops in an onLeave callback.
import { request, get, post, setCsrfToken, mayHaveSession, setUnauthenticatedHandler, servedRoutes } from './api.js';
import { h, clear, notify } from './ui.js';
import * as overview from './page_overview.js';
import * as sources from './page_sources.js';
import * as destinations from './page_destinations.js';
import * as replay from './page_replay.js';
import * as warehouse from './page_warehouse.js';
import * as admin from './page_admin.js';

const app = document.getElementById('app');
const ICON = document.querySelector('link[rel="icon"]').getAttribute('href');
let session = null;
let leaving = [];
let generation = 0;  // bumps on every navigation; a page's late callbacks check it

// The routes: [pattern, page module, nav key, needed permission]. The first segments must match
// kPageRoots in console.cc (the server answers index.html only for those).
const ROUTES = [
  ['/overview', overview.render, 'overview'],
  ['/sources', sources.renderList, 'sources'],
  ['/sources/:name', sources.renderOne, 'sources'],
  ['/destinations', destinations.renderList, 'destinations'],
  ['/destinations/:name', destinations.renderOne, 'destinations'],
  ['/catalogue', destinations.renderCatalogue, 'destinations'],
  ['/catalogue/:type', destinations.renderNew, 'destinations', 'edit_config'],
  ['/replay', replay.render, 'replay'],
  ['/warehouse', warehouse.render, 'warehouse'],
  ['/users', admin.renderUsers, 'users', 'manage_users'],
  ['/tokens', admin.renderTokens, 'tokens', 'manage_tokens'],
  ['/audit', admin.renderAudit, 'audit', 'read_audit'],
];

const NAV = [
  ['overview', 'Overview', '/overview'],
  ['sources', 'Sources', '/sources'],
  ['destinations', 'Destinations', '/destinations'],
  ['replay', 'Replay', '/replay'],
  ['warehouse', 'Warehouse', '/warehouse'],
];
const ADMIN_NAV = [
  ['users', 'Users', '/users', 'manage_users'],
  ['tokens', 'API tokens', '/tokens', 'manage_tokens'],
  ['audit', 'Audit log', '/audit', 'read_audit'],
];

function match(path) {
  for (const [pattern, render, nav, need] of ROUTES) {
    const want = pattern.split('/'), got = path.split('/');
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      if (want[i].startsWith(':')) {
        if (!got[i]) ok = false;
        else params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } else if (want[i] !== got[i]) ok = false;
    }
    if (ok) return { render, nav, need, params };
  }
  return null;
}

const can = (perm) => !!session && session.permissions.includes(perm);

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

// Same-origin links are handled here (no reload); modified clicks keep the browser's behaviour.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || a.target || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || a.hasAttribute('download')) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;  // in-page anchor
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => route());

function runLeave() {
  const fns = leaving;
  leaving = [];
  for (const fn of fns) {
    try {
      fn();
    } catch {}
  }
}

function loginPage(next) {
  runLeave();
  document.title = 'Sign in · Switchyard';
  const error = h('p.field-error', { role: 'alert', id: 'login-error' });
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button.primary', { type: 'submit' }, 'Sign in');
  const form = h('form', { 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, h('img', { src: ICON, alt: '' }), 'Switchyard'),
    h('p.muted', 'Sign in to the console.'),
    h('label', 'User', user),
    h('label', 'Password', password),
    error,
    submit,
    h('p.muted', 'No user yet? On the server: ', h('code', 'switchyard users add NAME --role admin --config FILE')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    try {
      const { body } = await request('POST', '/api/v1/login', { user: user.value, password: password.value });
      session = { user: body.user, role: body.role, permissions: body.permissions };
      setCsrfToken(body.csrf_token);
      navigate(next && next !== '/login' ? next : '/overview', { replace: true });
    } catch (e) {
      error.textContent = e.status === 401 ? 'Wrong user name or password.' : e.message;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  clear(app).append(h('div.login', form));
  user.focus();
}

async function logout() {
  try {
    await post('/api/v1/logout');
  } catch {}
  session = null;
  setCsrfToken('');
  navigate('/login', { replace: true });
}

function shell(active) {
  const link = ([key, label, href]) => h('a', { href, 'aria-current': key === active ? 'page' : false }, label);
  const adminLinks = ADMIN_NAV.filter(([, , , need]) => can(need));
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(app).append(h('div.shell',
    h('nav.side', { 'aria-label': 'Console' },
      h('div.logo', h('img', { src: ICON, alt: '' }), 'Switchyard'),
      NAV.map(link),
      adminLinks.length ? [h('div.group', 'Admin'), adminLinks.map(link)] : null,
      h('div.who', h('div', 'Signed in as ', h('strong', session.user)), h('div.muted', `role: ${session.role}`),
        h('button', { type: 'button', onclick: logout }, 'Sign out'))),
    main));
  return main;
}

async function route() {
  runLeave();
  const gen = ++generation;
  let path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/login') {
    const next = new URLSearchParams(location.search).get('next');
    if (session) return navigate(next || '/overview', { replace: true });
    return loginPage(next);
  }
  if (!session) {
    if (!mayHaveSession()) return navigate(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    try {
      const s = await get('/api/v1/session');
      session = { user: s.user, role: s.role, permissions: s.permissions };
      setCsrfToken(s.csrf_token);
    } catch (e) {
      if (e.status !== 401) notify(e.message, 'error');
      return;  // a 401 already went to the login page
    }
  }
  if (path === '/') return navigate('/overview', { replace: true });
  await servedRoutes().catch((e) => notify(e.message, 'error'));
  if (gen !== generation) return;
  const m = match(path);
  const main = shell(m ? m.nav : '');
  if (!m) {
    document.title = 'Not found · Switchyard';
    main.append(h('h1', 'No such page'), h('p', h('a', { href: '/overview' }, 'Go to the overview')));
    return;
  }
  if (m.need && !can(m.need)) {
    main.append(h('h1', 'Not allowed'), h('p', `Your role (${session.role}) cannot open this page.`));
    return;
  }
  const ctx = {
    main,
    params: m.params,
    query: new URLSearchParams(location.search),
    session,
    can,
    navigate,
    onLeave: (fn) => (gen === generation ? leaving.push(fn) : fn()),
    alive: () => gen === generation,
  };
  try {
    await m.render(ctx);
  } catch (e) {
    if (e.status === 401) return;
    main.append(h('div.callout.error', { role: 'alert' }, e.message));
  }
}

setUnauthenticatedHandler(() => {
  session = null;
  runLeave();
  const here = location.pathname + location.search;
  if (location.pathname !== '/login') navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true });
});

route();
