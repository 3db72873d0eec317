// Bundles and minifies the browser library: node build.mjs OUT_FILE [INTEGRATIONS_OUT]
// Needs only the local node_modules (esbuild); no network. The output must hold the settings
// placeholder exactly once: the server writes each source's settings document there.
// INTEGRATIONS_OUT gets every src/integrations/<id>.js minified on its own, each after a line
// "@@SY_INTEGRATION <id>" (web/analytics_js.h): the server puts the ones a source uses ahead of
// the library.
import { build } from 'esbuild';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
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

const integrationsOut = process.argv[3];
if (integrationsOut) {
  const dir = resolve(here, 'src/integrations');
  let text = '';
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).sort()) {
    const r = await build({
      entryPoints: [resolve(dir, file)],
      bundle: true,
      minify: true,
      format: 'iife',
      target: 'es2020',
      legalComments: 'none',
      write: false,
      logLevel: 'warning',
    });
    const code = r.outputFiles[0].text.trim();
    if (code.includes('@@SY_INTEGRATION') || code.includes('@@SWITCHYARD_SETTINGS@@')) {
      console.error(`build.mjs: ${file} holds a marker`);
      process.exit(1);
    }
    text += `@@SY_INTEGRATION ${file.slice(0, -3)}\n${code}\n`;
  }
  mkdirSync(dirname(resolve(integrationsOut)), { recursive: true });
  writeFileSync(integrationsOut, text);
}
