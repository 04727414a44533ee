#!/usr/bin/env bash
# Condition language benchmark, baton vs @marcbachmann/cel-js in the same run:
# builds build/ (scripts/build.sh), runs bench_expr and bench_celjs.mjs on
# bench/expr/cases.json and data.json, and prints evaluations per second of
# each and their ratio, then the geometric mean and minimum ratio.
# Usage: bench/expr/run.sh [SECONDS_PER_CASE]   (default 0.5; needs npm ci)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-0.5}
scripts/build.sh build >/dev/null
c_out=$(build/bench/expr/bench_expr bench/expr/cases.json bench/expr/data.json "$secs")
js_out=$(node bench/expr/bench_celjs.mjs bench/expr/cases.json bench/expr/data.json "$secs")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
C_OUT=$c_out JS_OUT=$js_out node --input-type=module -e '
const parse = (s) => Object.fromEntries(s.trim().split("\n").map((l) => JSON.parse(l)).map((o) => [o.name, o]))
const c = parse(process.env.C_OUT), js = parse(process.env.JS_OUT)
const fmt = (n) => n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : (n / 1e3).toFixed(1) + "k"
console.log("case                 baton evals/s   cel-js evals/s   ratio  same result")
let logsum = 0, min = Infinity, n = 0
for (const name of Object.keys(c)) {
  const r = c[name].evals_per_sec / js[name].evals_per_sec
  logsum += Math.log(r); min = Math.min(min, r); n++
  console.log(name.padEnd(20), fmt(c[name].evals_per_sec).padStart(14), fmt(js[name].evals_per_sec).padStart(16),
    (r.toFixed(1) + "x").padStart(7), "", c[name].result === js[name].result ? "yes" : `NO (${c[name].result} vs ${js[name].result})`)
}
console.log(`geometric mean ratio ${Math.exp(logsum / n).toFixed(1)}x, minimum ${min.toFixed(1)}x (one core each, single thread)`)
'
