// Bundles and minifies the browser library: node build.mjs OUT_FILE
// Needs only the local node_modules (esbuild); no network. The output must hold the settings
// placeholder exactly once: the server writes each source's settings document there.
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT_FILE');
  process.exit(2);
}
const result = await build({
  entryPoints: [resolve(here, 'src/index.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
});
let js = result.outputFiles[0].text.trim() + '\n';
const placeholder = '"@@SWITCHYARD_SETTINGS@@"';
const count = js.split(placeholder).length - 1;
if (count !== 1) {
  console.error(`build.mjs: expected the settings placeholder ${placeholder} once, found ${count}`);
  process.exit(1);
}
mkdirSync(dirname(resolve(out)), { recursive: true });
writeFileSync(out, js);
