// Storage for identity and the event queue: localStorage (mirrored in first-party cookies for
// the ids), falling back to memory where storage is blocked. Cookies are SameSite=Lax, one year,
// on the top-level domain (the widest domain the browser accepts), like analytics.js.
const mem = {};
const YEAR_S = 365 * 24 * 3600;
let domain; // undefined: not yet probed; '': host-only (an IP address, localhost)

function topDomain() {
  if (domain !== undefined) return domain;
  domain = '';
  const host = location.hostname;
  if (!host || /^[\d.]+$/.test(host) || host.indexOf(':') >= 0 || host.indexOf('.') < 0) return domain;
  const parts = host.split('.');
  for (let i = parts.length - 2; i >= 0; i--) {
    const d = parts.slice(i).join('.');
    document.cookie = 'ajs_tld_probe=1; path=/; SameSite=Lax; domain=' + d;
    if (document.cookie.indexOf('ajs_tld_probe=1') >= 0) {
      document.cookie = 'ajs_tld_probe=; path=/; SameSite=Lax; max-age=0; domain=' + d;
      return (domain = d);
    }
  }
  return domain;
}

export function cookieGet(name) {
  for (const part of document.cookie.split('; ')) {
    const eq = part.indexOf('=');
    if (part.slice(0, eq) != name) continue;
    let v = decodeURIComponent(part.slice(eq + 1));
    if (v[0] == '"') {
      try {
        v = JSON.parse(v); // written by analytics.js 1.x as a JSON string
      } catch (e) {}
    }
    return v || null;
  }
  return null;
}

export function cookieSet(name, value) {
  const d = topDomain();
  const age = value == null || value === '' ? 0 : YEAR_S;
  document.cookie =
    name + '=' + encodeURIComponent(value == null ? '' : value) + '; path=/; SameSite=Lax; max-age=' + age +
    (d ? '; domain=' + d : '') + (location.protocol == 'https:' ? '; Secure' : '');
}

export function lsGet(key) {
  try {
    return localStorage.getItem(key);
  } catch (e) {
    return key in mem ? mem[key] : null;
  }
}

export function lsSet(key, value) {
  try {
    if (value == null || value === '') localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch (e) {
    mem[key] = value == null || value === '' ? null : value;
  }
}
