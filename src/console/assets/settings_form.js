// Form controls generated from a destination type's settings table (GET /api/v1/destination-types:
// name, type, required, description, secret, default, min, max). Each control knows how to read
// its value back: undefined means "not given" (the default applies, or a secret stays as it is).
import { h, row, origin, secretState } from './ui.js';

function mappingText(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
}
function parseMapping(text, name) {
  const out = {};
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw Object.assign(new Error(`line ${i + 1}: expected "Name: value"`), { field: `settings.${name}` });
    out[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return out;
}

// One setting's row. current: the destination's value (edit) or undefined (new).
export function settingRow(setting, current, originMap) {
  const id = `settings.${setting.name}`;
  const help = [setting.description, setting.default !== null && setting.default !== undefined ? ` (default ${setting.default})` : ''].join('');
  let control, read;
  switch (setting.type) {
    case 'bool': {
      const initial = current !== undefined ? !!current : setting.default === 'true';
      control = h('input', { id, type: 'checkbox', checked: initial });
      read = () => (control.checked === initial ? undefined : control.checked);
      break;
    }
    case 'integer': {
      control = h('input', { id, type: 'number', step: 1, min: setting.min ?? false, max: setting.max ?? false,
        placeholder: setting.default ?? '', value: current !== undefined && current !== null ? String(current) : '' });
      read = () => (control.value === '' ? undefined : Number(control.value));
      break;
    }
    case 'secret': {
      const isSet = current && typeof current === 'object' && current.set;
      control = h('input', { id, type: 'password', autocomplete: 'new-password',
        placeholder: isSet ? 'set: leave empty to keep it' : '' });
      read = () => (control.value === '' ? undefined : control.value);
      if (current !== undefined) control = h('span.inline', secretState(current), control);
      break;
    }
    case 'mapping': {
      const initial = mappingText(current);
      control = h('textarea', { id, rows: 3, placeholder: 'Name: value, one per line', spellcheck: 'false' });
      control.value = initial;
      read = () => (control.value === initial ? undefined : parseMapping(control.value, setting.name));
      break;
    }
    default: {  // string, url, duration
      const initial = current !== undefined && current !== null ? String(current) : '';
      control = h('input', { id, type: setting.type === 'url' ? 'url' : 'text', value: initial,
        placeholder: setting.default ?? (setting.type === 'duration' ? 'e.g. 30s, 5m' : ''), spellcheck: 'false' });
      read = () => {
        if (current !== undefined && control.value === initial) return undefined;  // unchanged
        if (control.value === '') return current !== undefined && initial !== '' ? null : undefined;  // null: back to the default
        return control.value;
      };
    }
  }
  const input = control.querySelector ? (control.matches('input, textarea') ? control : control.querySelector('input')) : control;
  if (setting.required && current === undefined && setting.type !== 'bool') input.required = true;
  return {
    name: setting.name,
    el: row(id, setting.name, control, { help: `${setting.type}${help ? ' · ' + help : ''}`, required: setting.required,
      originBadge: origin(originMap, id) }),
    read,
  };
}

// Reads every row: {settings} with only the keys given (or changed, when editing).
export function readSettings(rows) {
  const settings = {};
  for (const r of rows) {
    const v = r.read();
    if (v !== undefined) settings[r.name] = v;
  }
  return settings;
}
