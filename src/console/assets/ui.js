// Small DOM helpers: elements, notices, switches, copy buttons, empty states, number and time
// formatting. No inline styles anywhere (the CSP allows none); classes from console.css.

// h('tag.class1.class2', {attrs, onclick…}, ...children). Attributes whose value is false, null or
// undefined are left out; `value`, `checked`, `disabled`, `selected` are set as properties.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (['value', 'checked', 'disabled', 'selected', 'indeterminate'].includes(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// The page header: title, a line under it, and actions on the right.
export function pageHead(title, sub, ...actions) {
  return h('div.page-head', h('div', h('h1', title), sub ? h('p.sub', sub) : null), h('div.actions', actions));
}

export function panel(title, ...children) {
  return h('section.panel', title ? h('h2', title) : null, children);
}

// An empty state: what is missing and what to do about it.
export function empty(title, what, ...actions) {
  return h('div.empty', h('strong', title), what ? h('span', what) : null, actions.length ? h('div.actions', actions) : null);
}

let noticeBox = null;
// A transient notice (bottom right; role=status, or alert for errors).
export function notify(text, kind = 'ok') {
  if (!noticeBox || !noticeBox.isConnected) {
    noticeBox = h('div.notices', { 'aria-live': 'polite' });
    document.body.append(noticeBox);
  }
  const n = h('div.notice', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text);
  noticeBox.append(n);
  setTimeout(() => n.remove(), kind === 'error' ? 9000 : 4000);
}

// A switch: <button role=switch>. onChange(next) returns a promise; the switch shows the new
// state only once it resolves, and is disabled meanwhile.
export function toggle(label, on, onChange, { disabled = false } = {}) {
  const b = h('button.switch', { type: 'button', role: 'switch', 'aria-checked': String(!!on), disabled },
    h('span.knob', { 'aria-hidden': 'true' }), h('span.label', label(on)));
  b.addEventListener('click', async () => {
    const next = b.getAttribute('aria-checked') !== 'true';
    b.disabled = true;
    try {
      await onChange(next);
      b.setAttribute('aria-checked', String(next));
      b.querySelector('.label').textContent = label(next);
    } catch (e) {
      notify(e.message, 'error');
    } finally {
      b.disabled = disabled;
    }
  });
  return b;
}

// A button copying `text` to the clipboard; where the clipboard is refused, it selects the
// text in `target` instead and says to press Ctrl+C.
export function copyButton(text, target, label = 'Copy') {
  return h('button', {
    type: 'button',
    onclick: async (ev) => {
      const b = ev.currentTarget;
      try {
        await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
        b.textContent = 'Copied';
      } catch {
        if (target) {
          const r = document.createRange();
          r.selectNodeContents(target);
          const s = getSelection();
          s.removeAllRanges();
          s.addRange(r);
        }
        b.textContent = 'Selected: press Ctrl+C';
      }
      setTimeout(() => (b.textContent = label), 2500);
    },
  }, label);
}

// Where a value comes from: the YAML file or the console (the API's `origin` map).
export function origin(map, key) {
  const o = map && map[key];
  if (!o) return null;
  return h('span.badge', { class: o, title: o === 'file' ? 'set in the configuration file' : 'set in the console (stored in data_dir)' },
    o === 'file' ? 'from file' : 'from console');
}

export function secretState(v) {
  const set = v && typeof v === 'object' && v.set;
  return h('span.badge', { class: set ? 'ok' : '' }, set ? 'set' : 'not set');
}

export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 });
}
export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString('en-GB', { hour12: false, year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
export function fmtClock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString('en-GB', { hour12: false });
}
export function fmtSeconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A labelled form row: label, control, help, and a slot for the field's error.
export function row(id, label, control, { help, required, originBadge } = {}) {
  return h('div.row', { 'data-field': id },
    h('label', { for: id }, label, required ? h('span.req', { 'aria-hidden': 'true' }, ' *') : null),
    h('div', control, originBadge ? [' ', originBadge] : null, help ? h('div.help', help) : null, h('div.field-error', { id: `${id}-error`, role: 'alert' })));
}

// Shows an ApiError on a form: next to the field it names when there is one, else as a notice.
export function showFormError(form, err) {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  const field = err.field || '';
  const slot = field && (form.querySelector(`[data-field="${CSS.escape(field)}"] .field-error`) ||
    form.querySelector(`[data-field="${CSS.escape(field.split('.').pop())}"] .field-error`));
  if (slot) {
    slot.textContent = err.message;
    const input = slot.closest('.row').querySelector('input, select, textarea');
    if (input) input.focus();
  } else {
    notify(err.message, 'error');
  }
}

export function confirmText(what) {
  return window.confirm(what);
}
