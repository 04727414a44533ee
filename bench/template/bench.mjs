// liquidjs side of bench/template: the same templates and data as
// bench_template.c, parsed once and rendered for about BENCH_SECONDS each.
// Baton's own filters (money, pluralize, track_link) are registered with the
// same behaviour so both engines do the same work. Prints one line per
// template: <name> <renders/s> <µs/render> <output bytes>.
import { readFileSync, writeFileSync } from 'node:fs';
import { Liquid } from 'liquidjs';

const [dataPath, ...specs] = process.argv.slice(2);
const data = JSON.parse(readFileSync(dataPath, 'utf8'));
const seconds = Number(process.env.BENCH_SECONDS || 1);
const engine = new Liquid({ timezoneOffset: 'Europe/London' });
const symbols = { EUR: '€', USD: '$', GBP: '£' };
engine.registerFilter('money', (v, code = 'USD') => {
  const s = Math.abs(Number(v)).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (Number(v) < 0 ? '-' : '') + (symbols[code] ?? '') + s + (symbols[code] ? '' : ` ${code}`);
});
engine.registerFilter('pluralize', (n, one, many) => (Number(n) === 1 ? one : many));
engine.registerFilter('track_link', (url, label = '') => `https://t.example.com/c/${label}?u=${url}`);

for (const spec of specs) {
  const [name, path] = spec.split('=');
  const tpl = engine.parse(readFileSync(path, 'utf8'));
  let out = '';
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now;
  do {
    for (let k = 0; k < 100; k++) out = engine.renderSync(tpl, data);
    n += 100;
    now = process.hrtime.bigint();
  } while (now < end);
  const el = Number(now - start) / 1e9;
  if (process.env.BENCH_OUT) writeFileSync(`${process.env.BENCH_OUT}/${name}.liquidjs`, out);
  console.log(`${name} ${(n / el).toFixed(0)} ${((el / n) * 1e6).toFixed(2)} ${Buffer.byteLength(out)}`);
}
