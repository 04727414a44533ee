#!/usr/bin/env bash
# Condition language benchmark, baton vs @marcbachmann/cel-js in the same run:
# builds build/ (scripts/build.sh), runs bench_expr and bench_celjs.mjs on
# bench/expr/cases.json and data.json (the same expressions and data on both
# sides), and prints evaluations per second of each, best of ROUNDS rounds,
# with the worst round as the spread, their ratio (best to best), then the
# geometric mean and minimum ratio, and the load average around the run.
# Usage: bench/expr/run.sh [SECONDS_PER_CASE [ROUNDS]]
#   (default 0.5 s and 5 rounds; needs npm ci)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-0.5}
rounds=${2:-5}
scripts/build.sh build >/dev/null
load0=$(cut -d' ' -f1-3 /proc/loadavg)
c_out=$(build/bench/expr/bench_expr bench/expr/cases.json bench/expr/data.json "$secs" "$rounds")
js_out=$(node bench/expr/bench_celjs.mjs bench/expr/cases.json bench/expr/data.json "$secs" "$rounds")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before: $load0, after: $load1; $secs s per case per side, best of $rounds rounds"
C_OUT=$c_out JS_OUT=$js_out node --input-type=module -e '
const parse = (s) => Object.fromEntries(s.trim().split("\n").map((l) => JSON.parse(l)).map((o) => [o.name, o]))
const c = parse(process.env.C_OUT), js = parse(process.env.JS_OUT)
const fmt = (n) => n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : (n / 1e3).toFixed(1) + "k"
console.log("case                 baton evals/s (worst)    cel-js evals/s (worst)   ratio  same result")
let logsum = 0, min = Infinity, n = 0
for (const name of Object.keys(c)) {
  const r = c[name].evals_per_sec / js[name].evals_per_sec
  logsum += Math.log(r); min = Math.min(min, r); n++
  console.log(name.padEnd(20), fmt(c[name].evals_per_sec).padStart(8), ("(" + fmt(c[name].worst) + ")").padStart(10),
    fmt(js[name].evals_per_sec).padStart(13), ("(" + fmt(js[name].worst) + ")").padStart(10),
    (r.toFixed(1) + "x").padStart(7), "", c[name].result === js[name].result ? "yes" : `NO (${c[name].result} vs ${js[name].result})`)
}
console.log(`geometric mean ratio ${Math.exp(logsum / n).toFixed(1)}x, minimum ${min.toFixed(1)}x (one core each, single thread)`)
'
