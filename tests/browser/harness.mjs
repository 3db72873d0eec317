// Harness for the browser suites: the REAL switchyard binary on a free 127.0.0.1 port with a temp
// data_dir, a small static server for the test pages (another origin, so CORS is exercised), and
// Debian's Chromium driven by playwright-core (never a downloaded browser). Everything started
// here is stopped by the returned close functions (the suites call them in `after` hooks).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');
export const WRITE_KEY = 'wk_browser_web';
export const WRITE_KEY_2 = 'wk_browser_other';
export const CHROMIUM = process.env.SY_CHROMIUM || '/usr/bin/chromium';
const BIN = resolve(process.env.SWITCHYARD_BIN || join(REPO, 'build/release/switchyard'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

// Starts `switchyard serve`; web: extra lines for the `web:` section (e.g. {cache_max_age: '5s'}).
// admin: true adds the admin listener (the console) on another free port (`adminBase`);
// extra: more top-level YAML lines (e.g. an `archive:` section).
export async function startSwitchyard({ web = {}, ingest = {}, admin = false, extra = [] } = {}) {
  if (!existsSync(BIN)) throw new Error(`switchyard binary not found at ${BIN}: build it or set SWITCHYARD_BIN`);
  const dir = mkdtempSync(join(tmpdir(), 'sy-browser-'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const adminPort = admin ? await freePort() : 0;
    const config = join(dir, 'switchyard.yaml');
    const lines = [
      'version: 1',
      `listen: 127.0.0.1:${port}`,
      `data_dir: ${join(dir, 'data')}`,
      'io_threads: 2',
      'log_level: warn',
      'sources:',
      '  - name: web',
      `    write_key: ${WRITE_KEY}`,
      '  - name: other',
      `    write_key: ${WRITE_KEY_2}`,
      'log:',
      '  fsync: always',
    ];
    if (Object.keys(ingest).length) lines.push('ingest:', ...Object.entries(ingest).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`));
    if (Object.keys(web).length) lines.push('web:', ...Object.entries(web).map(([k, v]) => `  ${k}: ${v}`));
    if (admin) lines.push('admin:', `  listen: 127.0.0.1:${adminPort}`);
    lines.push(...extra);
    writeFileSync(config, lines.join('\n') + '\n');
    const logPath = join(dir, 'server.log');
    const proc = spawn(BIN, ['serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    let log = '';
    proc.stdout.on('data', (d) => (log += d));
    proc.stderr.on('data', (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15000;
    let ready = false;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        if ((await fetch(base + '/readyz')).status === 200) {
          ready = true;
          break;
        }
      } catch {}
      await sleep(30);
    }
    if (!ready) {
      proc.kill('SIGKILL');
      writeFileSync(logPath, log);
      if (/address/i.test(log)) continue; // the port was taken meanwhile
      throw new Error(`switchyard did not start:\n${log}`);
    }
    if (admin) {
      const adminDeadline = Date.now() + 5000;
      while (Date.now() < adminDeadline) {
        try {
          if ((await fetch(`http://127.0.0.1:${adminPort}/api/v1/openapi.json`)).status === 200) break;
        } catch {}
        await sleep(30);
      }
    }
    return {
      port,
      base,
      adminBase: admin ? `http://127.0.0.1:${adminPort}` : undefined,
      dir,
      config,
      // `switchyard users add NAME --role ROLE` with the password on stdin (works while serving).
      addUser(name, role, password) {
        execFileSync(BIN, ['users', 'add', name, '--role', role, '--config', config], { input: password + '\n', encoding: 'utf8' });
      },
      log: () => log,
      // Every stored event (`switchyard dump` works while the server runs).
      dump(source) {
        const args = ['dump', '--config', config];
        if (source) args.push('--source', source);
        const out = execFileSync(BIN, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
        return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      },
      async stop() {
        if (proc.exitCode === null) {
          proc.kill('SIGTERM');
          await new Promise((r) => {
            const t = setTimeout(() => {
              proc.kill('SIGKILL');
              r();
            }, 10000);
            proc.on('exit', () => {
              clearTimeout(t);
              r();
            });
          });
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('switchyard could not get a free port');
}

// A static server for test pages: routes maps a path to {type, body} (body: string or Buffer).
export async function startStatic(routes) {
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    const r = routes[path];
    if (!r) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': r.type || 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(r.body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    routes,
    close: () => new Promise((r) => server.close(r) || server.closeAllConnections()),
  };
}

// Debian's Chromium, headless, with a fresh profile directory.
export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'sy-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Switchyard's documented snippet (sdk/js/snippet.js) pointed at `cdn` for `writeKey`.
export function snippet(cdn, writeKey = WRITE_KEY) {
  const text = readFileSync(join(REPO, 'sdk/js/snippet.js'), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('//'))
    .join('\n');
  if (!text.includes('https://SWITCHYARD_HOST') || !text.includes('YOUR_WRITE_KEY')) throw new Error('snippet changed shape');
  return text.replace('https://SWITCHYARD_HOST', cdn).replace('YOUR_WRITE_KEY', writeKey);
}

// Polls `fn` until it returns a truthy value; throws with `what` after `ms`.
export async function waitFor(fn, what, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
