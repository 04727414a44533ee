#!/usr/bin/env bash
# Template benchmark: renders per second of an email body (~3 KB, a for over
# 10 cart items, if branches, ~20 filters) and a 160-character SMS, in Baton
# and in liquidjs with the same templates and data, in the same run.
# Usage: bench/template/run.sh [BUILD_DIR]   (default build; BENCH_SECONDS=1)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bin=$build/bench/template/bench_template
[ -x "$bin" ] || { echo "bench/template: build first (scripts/build.sh $build)" >&2; exit 1; }
d=bench/template
specs=(email=$d/email.liquid sms=$d/sms.liquid)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
baton=$(BENCH_OUT=$out "$bin" "$d/data.json" "${specs[@]}")
node=$(BENCH_OUT=$out node "$d/bench.mjs" "$d/data.json" "${specs[@]}")
echo "template     baton r/s   µs/render   liquidjs r/s   µs/render   ratio   output bytes (baton/liquidjs)"
join <(echo "$baton" | sort) <(echo "$node" | sort) | while read -r name br bu bo nr nu no; do
  printf "%-10s %11s %11s %14s %11s %6.1fx   %s/%s\n" "$name" "$br" "$bu" "$nr" "$nu" \
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
