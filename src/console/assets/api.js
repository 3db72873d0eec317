// The admin API client (docs/admin-api.md): JSON in and out, the session cookie (HttpOnly, sent
// by the browser) and the CSRF token in X-CSRF-Token on every change. A 401 on anything but the
// login sends the user back to the login page.

let csrfToken = '';
let onUnauthenticated = () => {};

// A sessionStorage flag saying "a session was opened in this tab": without it the console shows
// the login page at once instead of asking /api/v1/session for a 401 (the cookie is HttpOnly, so
// the page cannot see it). It holds no secret.
const HINT = 'sy-console-session';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.field = field || '';
  }
}

export function setCsrfToken(token) {
  csrfToken = token || '';
  if (token) sessionStorage.setItem(HINT, '1');
  else sessionStorage.removeItem(HINT);
}
export function mayHaveSession() {
  return sessionStorage.getItem(HINT) === '1';
}
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

// One request. Answers {status, body (parsed JSON or text), etag}; throws ApiError on 4xx/5xx.
export async function request(method, path, body, { ifMatch, raw } = {}) {
  const headers = { Accept: raw ? 'text/plain, application/yaml, */*' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  if (ifMatch) headers['If-Match'] = ifMatch;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server could not be reached: ' + e.message);
  }
  const text = res.status === 204 ? '' : await res.text();
  const type = res.headers.get('Content-Type') || '';
  let parsed = text;
  if (type.includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!res.ok) {
    const e = (parsed && parsed.error) || {};
    const err = new ApiError(res.status, e.code, e.message || `${method} ${path}: HTTP ${res.status}`, e.field);
    if (res.status === 401 && path !== '/api/v1/login') {
      setCsrfToken('');
      onUnauthenticated();
    }
    throw err;
  }
  return { status: res.status, body: parsed, etag: res.headers.get('ETag') || '' };
}

export const get = async (path) => (await request('GET', path)).body;
export const post = async (path, body = {}) => (await request('POST', path, body)).body;
export const patch = async (path, body, ifMatch) => (await request('PATCH', path, body, { ifMatch })).body;
export const del = async (path, body) => (await request('DELETE', path, body)).body;

export const enc = encodeURIComponent;

// The routes this server serves: the OpenAPI document's paths, less those marked x-planned
// (agreed shapes, not served yet). Pages that need a missing one say so instead of asking.
let routes = null;
export async function servedRoutes() {
  if (routes) return routes;
  const doc = await get('/api/v1/openapi.json');
  routes = new Set();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'patch', 'delete', 'put'].includes(method)) continue;
      if (op['x-planned'] || item['x-planned']) continue;
      routes.add(`${method.toUpperCase()} ${path}`);
    }
  }
  return routes;
}
export function serves(route) {
  return !!routes && routes.has(route);
}
