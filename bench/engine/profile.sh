#!/usr/bin/env bash
# Profiles only the warm (or BENCH_PROFILE=cold) timed pass of bench_engine with perf (cpu-clock,
# DWARF call graphs) and prints the top functions, self and inclusive.
#   bench/engine/profile.sh [bench_engine options, default -n 300000 -r 1]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/bench/engine/bench_engine ] || scripts/build.sh build
out=${KEEP:-$(mktemp -d)}; mkdir -p "$out"; rm -f "$out/ctl.fifo"
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT
[ $# -gt 0 ] || set -- -n 500000 -r 1
mkfifo "$out/ctl.fifo"
exec 9<>"$out/ctl.fifo"
PERF_CTL_FD=9 BENCH_PROFILE=${BENCH_PROFILE:-warm} perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -D -1 \
  --control fd:9 -o "$out/perf.data" build/bench/engine/bench_engine "$@" 2>/dev/null
echo "== self"
perf report -i "$out/perf.data" --stdio --no-children -g none --sort sym 2>/dev/null |
  grep -E '^ +[0-9]' | head -30
echo "== inclusive"
perf report -i "$out/perf.data" --stdio --children -g none --sort sym 2>/dev/null |
  grep -E '^ +[0-9]' | head -45
