// Evaluated in every function's fresh global before the user's code (src/functions/spidermonkey.cc
// embeds it). Defines the globals users of the three styles expect (DropEvent, ValidationError,
// RetryError, EventNotSupported, console) and the hidden driver the engine calls: __sy_setup,
// __sy_find, __sy_call, __sy_finish, __sy_fail, __sy_batch_finish. The natives __sy_log,
// __sy_store_get/set/del are captured here and removed from the global.
(function (g) {
  'use strict';
  const nlog = g.__sy_log, sget = g.__sy_store_get, sset = g.__sy_store_set,
        sdel = g.__sy_store_del;
  for (const n of ['__sy_log', '__sy_store_get', '__sy_store_set', '__sy_store_del']) delete g[n];
  // Not ECMAScript: nothing here may reach outside the sandbox.
  for (const n of ['WebAssembly', 'SharedArrayBuffer', 'Atomics']) { try { delete g[n]; } catch (e) {} }
  const hide = (name, value) => Object.defineProperty(g, name, {value, writable: false,
    enumerable: false, configurable: false});
  const named = (name) => {
    const C = class extends Error {
      constructor(message) { super(message); this.name = name; }
    };
    Object.defineProperty(C, 'name', {value: name});
    return C;
  };
  const DropEvent = named('DropEvent'), ValidationError = named('ValidationError'),
        RetryError = named('RetryError'), EventNotSupported = named('EventNotSupported');
  Object.assign(g, {DropEvent, ValidationError, RetryError, EventNotSupported});
  const text = (a) => {
    if (typeof a === 'string') return a;
    if (a instanceof Error) return String(a);
    try { const s = JSON.stringify(a); return s === undefined ? String(a) : s; }
    catch (e) { return String(a); }
  };
  const line = (level) => (...args) => { nlog(level, args.map(text).join(' ')); };
  const log = {debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error')};
  g.console = {log: log.info, info: log.info, warn: log.warn, error: log.error, debug: log.debug};
  const ttlMs = (opts) => {
    const s = typeof opts === 'number' ? opts : (opts && typeof opts.ttl === 'number' ? opts.ttl : 0);
    return s > 0 ? Math.ceil(s * 1000) : 0;
  };
  const store = Object.freeze({
    get: (key) => { const v = sget(String(key)); return v === undefined ? undefined : JSON.parse(v); },
    set: (key, value, opts) => {
      const s = JSON.stringify(value);
      if (s === undefined) throw new TypeError('store.set: the value cannot be stored as JSON');
      sset(String(key), s, ttlMs(opts));
    },
    del: (key) => { sdel(String(key)); },
  });
  let settings = {};
  let entry = null;
  const ctx = {log, props: settings, store, source: {id: ''}, destination: {id: ''}, headers: {}};
  const meta = {sourceName: '', destinationName: '', messageId: ''};
  const metadata = () => meta;
  const HANDLERS = {track: 'onTrack', identify: 'onIdentify', page: 'onPage', screen: 'onScreen',
                    group: 'onGroup', alias: 'onAlias'};
  const TYPES = new Set(Object.keys(HANDLERS));

  hide('__sy_setup', (settingsText) => {
    settings = JSON.parse(settingsText);
    ctx.props = settings;
  });
  // Which convention `obj` (the global, or a module's namespace) follows. 0 transformEvent,
  // 1 transformBatch, 2 default export (Jitsu), 3 Segment handlers; -1 none.
  hide('__sy_find', (obj) => {
    if (typeof obj.transformBatch === 'function') { entry = {style: 1, fn: obj.transformBatch}; return 1; }
    if (typeof obj.transformEvent === 'function') { entry = {style: 0, fn: obj.transformEvent}; return 0; }
    if (typeof obj.default === 'function') { entry = {style: 2, fn: obj.default}; return 2; }
    const h = {};
    let any = false;
    for (const t of TYPES) if (typeof obj[HANDLERS[t]] === 'function') { h[t] = obj[HANDLERS[t]]; any = true; }
    if (any) { entry = {style: 3, handlers: h}; return 3; }
    return -1;
  });
  const setMeta = (m) => {
    meta.sourceName = m[0]; meta.destinationName = m[1]; meta.messageId = m[2];
    ctx.source.id = m[0]; ctx.destination.id = m[1];
  };
  // Calls the function on one event (JSON text); returns what it returned (maybe a promise), or
  // a sentinel when a Segment function has no handler for the type.
  const KEEP = {};
  hide('__sy_call', (eventText, m) => {
    setMeta(m);
    const event = JSON.parse(eventText);
    switch (entry.style) {
      case 0: return entry.fn(event, metadata);
      case 2: return entry.fn(event, ctx);
      case 3: {
        const h = entry.handlers[event && event.type];
        return h ? h(event, settings) : KEEP;
      }
    }
    throw new TypeError('transformBatch functions run on batches');
  });
  // transformBatch: the parsed inputs and their messageIds as they came (the function may change
  // both), kept until __sy_batch_finish attributes the outputs.
  let batchInputs = [], batchIds = [];
  hide('__sy_call_batch', (texts, m) => {
    setMeta(m);
    batchInputs = texts.map((t) => JSON.parse(t));
    batchIds = batchInputs.map((e) => (e !== null && typeof e === 'object' ? e.messageId : undefined));
    const index = new Map(batchInputs.map((e, i) => [e, i]));
    // RudderStack's metadata(event): the source and destination of the call, the event's messageId.
    const batchMetadata = (e) => {
      const i = index.get(e);
      return {...meta, messageId: i !== undefined ? batchIds[i] : (e && e.messageId)};
    };
    return entry.fn(batchInputs.slice(), batchMetadata);
  });

  // Why `e` is not a valid message ("" when it is).
  const invalid = (e) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'not an object';
    if (typeof e.type !== 'string') return 'missing type';
    if (!TYPES.has(e.type)) return 'unknown type "' + String(e.type).slice(0, 40) + '"';
    if (e.type === 'track' && (typeof e.event !== 'string' || e.event === '')) return 'a track without event';
    if (e.type === 'alias' && e.previousId == null) return 'an alias without previousId';
    if (e.type === 'group' && e.groupId == null) return 'a group without groupId';
    const id = (v) => (typeof v === 'string' && v !== '') || typeof v === 'number';
    if (!id(e.userId) && !id(e.anonymousId)) return 'neither userId nor anonymousId';
    return '';
  };
  // Result codes read by the engine: k 0 keep, 1 events (e: texts; d: dropped explicitly),
  // 2 error (kind, m, s), 3 retry (m).
  const bad = (kind, m) => ({k: 2, kind, m, s: ''});
  const encode = (list, inputId, maxOutputs, maxBytes) => {
    if (list.length > maxOutputs) return bad('output_too_large', list.length + ' events (at most ' + maxOutputs + ')');
    const e = [];
    let bytes = 0;
    for (let i = 0; i < list.length; i++) {
      const why = invalid(list[i]);
      if (why) return bad('invalid_output', 'output ' + i + ': ' + why);
      const o = list[i];
      // Copies of one event must not share a messageId (receivers dedupe by it).
      if (list.length > 1 && i > 0 && inputId !== undefined && o.messageId === inputId) {
        o.messageId = inputId + '-' + (i + 1);
      }
      const t = JSON.stringify(o);
      bytes += t.length;
      if (bytes > maxBytes) return bad('output_too_large', 'more than ' + maxBytes + ' bytes of output');
      e.push(t);
    }
    return {k: 1, e, d: list.length === 0};
  };
  hide('__sy_finish', (v, eventText, maxOutputs, maxBytes) => {
    if (v === KEEP || v === undefined) {
      if (entry.style === 0) return {k: 1, e: [], d: true};  // RudderStack: nothing returned drops
      return {k: 0};
    }
    if (v === null || v === 'drop') return {k: 1, e: [], d: true};
    let inputId;
    try { inputId = JSON.parse(eventText).messageId; } catch (e) {}
    return encode(Array.isArray(v) ? v : [v], inputId, maxOutputs, maxBytes);
  });
  // Which input each output came from (docs/functions.md, "transformBatch"): the input object
  // itself, else the input whose messageId it keeps, else the first input (the earliest event of
  // the call, whose offset holds the stream's cursor until every output is final). The second and
  // later outputs of one input that keep its messageId get "<id>-2", "-3", … as in a fan-out.
  hide('__sy_batch_finish', (v, unused, maxOutputs, maxBytes) => {
    const inputs = batchInputs, ids = batchIds;
    batchInputs = []; batchIds = [];
    if (v === undefined || v === null) return {k: 1, e: [], f: [], d: true};
    if (!Array.isArray(v)) {
      return bad('invalid_output', 'transformBatch must return an array, not ' +
                 (typeof v === 'object' ? 'an object' : typeof v));
    }
    if (v.length > maxOutputs) return bad('output_too_large', v.length + ' events (at most ' + maxOutputs + ')');
    const byObject = new Map(inputs.map((e, i) => [e, i]));
    const byId = new Map();
    ids.forEach((id, i) => { if (id !== undefined && !byId.has(id)) byId.set(id, i); });
    const seen = new Array(inputs.length).fill(0);
    const e = [], f = [];
    let bytes = 0;
    for (let i = 0; i < v.length; i++) {
      let o = v[i];
      const why = invalid(o);
      if (why) return bad('invalid_output', 'output ' + i + ': ' + why);
      const at = byObject.get(o) ?? byId.get(o.messageId) ?? 0;
      if (ids[at] !== undefined && o.messageId === ids[at] && ++seen[at] > 1) {
        o = {...o, messageId: ids[at] + '-' + seen[at]};
      }
      const t = JSON.stringify(o);
      bytes += t.length;
      if (bytes > maxBytes) return bad('output_too_large', 'more than ' + maxBytes + ' bytes of output');
      e.push(t);
      f.push(at);
    }
    return {k: 1, e, f, d: v.length === 0};
  });
  // What a thrown value (or a rejection) means.
  hide('__sy_fail', (x) => {
    const name = x && typeof x === 'object' && typeof x.name === 'string' ? x.name : '';
    const msg = x instanceof Error || (x && typeof x === 'object' && 'message' in x)
        ? (name ? name + ': ' : '') + String(x.message) : 'uncaught ' + text(x);
    const stack = x && typeof x === 'object' && typeof x.stack === 'string' ? x.stack : '';
    if (x instanceof DropEvent || name === 'DropEvent') return {k: 1, e: [], d: true};
    if (x instanceof RetryError || name === 'RetryError') return {k: 3, m: msg};
    if (x instanceof ValidationError || name === 'ValidationError') return {k: 2, kind: 'validation', m: msg, s: stack};
    if (name === 'InternalError' && /too much recursion/.test(String(x.message))) return {k: 2, kind: 'recursion', m: msg, s: stack};
    return {k: 2, kind: 'thrown', m: msg, s: stack};
  });
})(globalThis);
