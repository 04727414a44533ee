#!/usr/bin/env bash
# Template benchmark: renders per second of an email body (~3 KB, a for over
# 10 cart items, if branches, ~20 filters) and a 160-character SMS, in Baton
# and in liquidjs with the same templates and data, in the same run. The two
# engines run in alternating rounds (ROUNDS, default 3, of BENCH_SECONDS,
# default 0.4, per template) and the best round of each counts, so load from
# other processes on a shared machine skews the ratio less. Also checks that
# both engines produced byte-identical output.
# Usage: bench/template/run.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bin=$build/bench/template/bench_template
[ -x "$bin" ] || { echo "bench/template: build first (scripts/build.sh $build)" >&2; exit 1; }
export BENCH_SECONDS=${BENCH_SECONDS:-0.4}
d=bench/template
specs=(email=$d/email.liquid sms=$d/sms.liquid)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "${ROUNDS:-3}"); do
  BENCH_OUT=$out "$bin" "$d/data.json" "${specs[@]}" >>"$out/baton.txt"
  BENCH_OUT=$out node "$d/bench.mjs" "$d/data.json" "${specs[@]}" >>"$out/node.txt"
done
best() { sort -k1,1 -k2,2nr "$1" | awk '!seen[$1]++'; }
echo "template    baton r/s  µs/render  liquidjs r/s  µs/render   ratio  output bytes (baton/liquidjs)"
join <(best "$out/baton.txt") <(best "$out/node.txt") | while read -r name br bu bo nr nu no; do
  printf "%-8s %12s %10s %13s %10s %6.1fx  %s/%s\n" "$name" "$br" "$bu" "$nr" "$nu" \
    "$(echo "$br / $nr" | bc -l)" "$bo" "$no"
done
for s in "${specs[@]}"; do
  name=${s%%=*}
  if cmp -s "$out/$name.baton" "$out/$name.liquidjs"; then
    echo "$name: outputs identical"
  else
    echo "$name: OUTPUTS DIFFER"; diff "$out/$name.liquidjs" "$out/$name.baton" | head -n 20; exit 1
  fi
done
