// Lists the golden-liquid cases where liquidjs (npm) disagrees with the
// golden suite, and which side `baton render` follows on each, for
// docs/templates-liquidjs.md. Not a test (the name keeps node --test away):
//   node tests/diff/golden-vs-liquidjs.mjs [--markdown]
// BATON_BIN (default build/src/baton) and BATON_ORACLES as for the tests.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Liquid } from 'liquidjs';

const dir = process.env.BATON_ORACLES || new URL('../../../shared/oracles', import.meta.url).pathname;
const BIN = process.env.BATON_BIN || 'build/src/baton';
const { tests } = JSON.parse(readFileSync(`${dir}/liquid/golden_liquid.json`, 'utf8'));
const markdown = process.argv.includes('--markdown');
const tmp = mkdtempSync(join(tmpdir(), 'baton-gvl-'));

function baton(tc) {
  const blocks = join(tmp, 'blocks');
  rmSync(blocks, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', blocks]);
  for (const [name, src] of Object.entries(tc.templates || {})) writeFileSync(join(blocks, `${name}.liquid`), src);
  writeFileSync(join(tmp, 'data.json'), JSON.stringify(tc.data || {}));
  const r = spawnSync(BIN, ['render', '-', '--data-json', join(tmp, 'data.json'), '--blocks', blocks],
    { input: tc.template, encoding: 'utf8' });
  return r.status === 0 ? { ok: true, out: r.stdout } : { ok: false, out: r.stderr.trim() };
}

const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, '\\n').slice(0, 70);
const rows = [];
let followsGolden = 0;
for (const tc of tests) {
  const engine = new Liquid({ templates: tc.templates || {}, relativeReference: false });
  let got, failed = false;
  try {
    got = engine.parseAndRenderSync(tc.template, structuredClone(tc.data || {}));
  } catch (e) {
    failed = true;
    got = `error: ${e.message.split('\n')[0]}`;
  }
  const accepts = (ok, out) => (tc.invalid ? !ok : ok && (tc.results || [tc.result]).includes(out));
  if (accepts(!failed, got)) continue;
  const b = baton(tc);
  const side = accepts(b.ok, b.out) ? 'golden' : b.ok && b.out === got ? 'liquidjs' : 'neither';
  if (side === 'golden') followsGolden++;
  rows.push({ name: tc.name, golden: tc.invalid ? 'error' : JSON.stringify(tc.result ?? tc.results),
    liquidjs: failed ? 'error' : JSON.stringify(got), side });
}
rmSync(tmp, { recursive: true, force: true });
if (markdown) {
  console.log('| case | golden suite | liquidjs | Baton follows |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${esc(r.name)} | \`${esc(r.golden)}\` | \`${esc(r.liquidjs)}\` | ${r.side} |`);
  console.log('');
}
console.log(`liquidjs disagrees with the golden suite on ${rows.length} of ${tests.length} cases; ` +
  `Baton follows the golden suite on ${followsGolden}, liquidjs on ` +
  `${rows.filter((r) => r.side === 'liquidjs').length}, neither on ${rows.filter((r) => r.side === 'neither').length}.`);
