#!/usr/bin/env bash
# Ingest benchmark: builds if needed, starts `baton serve` on a fresh data
# directory (port 0, fsync on), runs bench_ingest's modes against it, stops
# the server and prints a summary. Everything the server wrote is removed.
#
#   bench/ingest/run.sh                  # batch, lat-track, lat-batch; 8 s each
#   bench/ingest/run.sh -m batch -c 64   # extra options go to bench_ingest
#   BATON_MAX_CONNECTIONS=2048 bench/ingest/run.sh   # limits.max_connections (default 1024)
#   BATON_DATA=/path bench/ingest/run.sh       # data directory on another disk
#   BATON_CHECKPOINT=1h bench/ingest/run.sh    # engine.checkpoint_interval (default 2s)
#   BATON_NO_FSYNC=1 bench/ingest/run.sh       # engine.unsafe_no_fsync: NOT durable, for comparison
#   BATON_NO_PREALLOC=1 bench/ingest/run.sh    # engine.log_preallocate: false, for comparison
#   BATON_HTTP_THREADS=1 bench/ingest/run.sh   # http_threads (default: one event loop per CPU)
#   BATON_PERF=out.data bench/ingest/run.sh -m batch   # perf record the server meanwhile
#   BATON_BIN=/path/to/baton bench/ingest/run.sh      # another build of the server (A/B)
#   BATON_LOG_LEVEL=debug BATON_LOG_KEEP=s.log bench/ingest/run.sh   # server log level; keep the log
#     (debug logs every checkpoint with its duration, and every merge)
#
#   bench/ingest/run.sh issue3   # issue 3's targets, about 2-3 minutes:
#     1. populate: 1,000,000 customers through /v1/batch with identity resolution
#        (promotions, merges; profiles and merges checked) -> events/s durable
#     2. lat-track: single-event /v1/track at 20,000/s, open loop, over 256
#        connections -> p99; then the same over 1,024 connections (2b): at
#        20,000/s, 256 connections hold only 12.8 ms of requests, so every
#        fsync stall longer than that makes the generator queue requests of
#        its own; 1,024 is closer to SDK traffic from many clients. Both are
#        printed; the server's limits.max_connections is 2048 in this mode.
#     3. lookup: GET /v1/profiles/{id} at 5,000/s on the idle server -> p99
#     4. lookup at 5,000/s again while a second bench_ingest runs a closed-loop
#        batch load of the same customers (as much as the server takes) -> p99
#     5. the same beside an open-loop load of 20,000 events/s (lat-batch) -> p99
#   then one summary with each figure next to its target. Before phases 2 to 5
#   it waits until the engine has applied and checkpointed everything.
#   BATON_ISSUE3_USERS=200000 bench/ingest/run.sh issue3   # fewer customers (quicker)
#   BATON_ISSUE3_TRACK_SECONDS=8 bench/ingest/run.sh issue3  # shorter lat-track phases (default
#     30 s: checkpoints are spaced by how long the last one took, and an 8 s phase may have none)
set -uo pipefail
cd "$(dirname "$0")/../.."
issue3=
if [ "${1:-}" = issue3 ]; then
  issue3=1
  shift
  BATON_MAX_CONNECTIONS=${BATON_MAX_CONNECTIONS:-2048}
fi
if [ ! -x build/src/baton ] || [ ! -x build/bench/ingest/bench_ingest ]; then
  scripts/build.sh build >/dev/null || { echo "build failed" >&2; exit 1; }
fi
tmp=$(mktemp -d "${BATON_DATA:-${TMPDIR:-/tmp}}/baton-bench-ingest.XXXXXX")
server=
cleanup() {
  [ -n "${BATON_LOG_KEEP:-}" ] && cp "$tmp/server.log" "$BATON_LOG_KEEP"
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
{
  echo "listen: 127.0.0.1:0"
  echo "data_dir: $tmp/data"
  echo "sources:"
  echo "  - name: bench"
  echo "    write_key: wk_bench"
  echo "admin_keys:"
  echo "  - key: ak_bench"
  echo "    scopes: [admin]"
  echo "log_level: ${BATON_LOG_LEVEL:-info}"
  [ -n "${BATON_HTTP_THREADS:-}" ] && echo "http_threads: $BATON_HTTP_THREADS"
  if [ -n "${BATON_CHECKPOINT:-}${BATON_NO_FSYNC:-}${BATON_NO_PREALLOC:-}" ]; then
    echo "engine:"
    [ -n "${BATON_CHECKPOINT:-}" ] && echo "  checkpoint_interval: $BATON_CHECKPOINT"
    [ -n "${BATON_NO_FSYNC:-}" ] && echo "  unsafe_no_fsync: true"
    [ -n "${BATON_NO_PREALLOC:-}" ] && echo "  log_preallocate: false"
  fi
  if [ -n "${BATON_MAX_CONNECTIONS:-}" ]; then
    echo "limits:"
    echo "  max_connections: $BATON_MAX_CONNECTIONS"
  fi
} >"$tmp/baton.yaml"
"${BATON_BIN:-build/src/baton}" serve --config "$tmp/baton.yaml" 2>"$tmp/server.log" &
server=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -m1 '"listening"' "$tmp/server.log" 2>/dev/null | sed -n 's/.*"port":\([0-9]*\).*/\1/p')
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
workers=$(grep -m1 '"listening"' "$tmp/server.log" | sed -n 's/.*"workers":\([0-9]*\).*/\1/p')
loops=$(grep -m1 '"listening"' "$tmp/server.log" | sed -n 's/.*"event_loops":\([0-9]*\).*/\1/p')
echo "== bench/ingest $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   server pid $server port $port, $loops HTTP event loops and $workers ingest workers, data dir $tmp ($([ -n "${BATON_NO_FSYNC:-}" ] && echo 'fsync OFF: acknowledgements are not durable' || echo 'fsync on'))"
perf=
if [ -n "${BATON_PERF:-}" ]; then
  perf record -q -e cpu-clock -F 1000 --call-graph dwarf,8192 -p "$server" -o "$BATON_PERF" \
    2>/dev/null &
  perf=$!
  sleep 0.5
fi
bench=(build/bench/ingest/bench_ingest -p "$port" -k wk_bench -a ak_bench -P "$server")
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server/status" 2>/dev/null | awk '{printf "%.0f MB", $1/1024}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
# field NAME of the "summary MODE ..." line in file F
fig() { awk -v m="$2" -v k="$3" '$1 == "summary" && $2 == m { for (i = 3; i <= NF; i++) {
  split($i, a, "="); if (a[1] == k) v = a[2] } } END { print v }' "$1"; }
# "met" or "MISSED": fig <= target (le) or >= target (ge)
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == "ge" ? v + 0 >= t : v + 0 <= t;
  print (v == "" ? "NOT MEASURED" : ok ? "met" : "MISSED") }'; }
# Waits (at most 60 s) until the engine has applied and checkpointed everything
# durable, so that a phase does not pay for the previous one's checkpoint.
settle() {
  local st a c d
  for _ in $(seq 1 600); do
    st=$(curl -s -H 'Authorization: Bearer ak_bench' "http://127.0.0.1:$port/v1/stats")
    d=$(sed -n 's/.*"durable_lsn":\([0-9]*\).*/\1/p' <<<"$st")
    a=$(sed -n 's/.*"applied_lsn":\([0-9]*\).*/\1/p' <<<"$st")
    c=$(sed -n 's/.*"checkpoint_lsn":\([0-9]*\).*/\1/p' <<<"$st")
    [ -n "$d" ] && [ "$a" = "$d" ] && [ "$c" = "$d" ] && return 0
    sleep 0.1
  done
  echo "   (the engine had not checkpointed everything after 60 s)"
}
if [ -z "$issue3" ]; then
  "${bench[@]}" "$@"
  rc=$?
else
  users=${BATON_ISSUE3_USERS:-1000000}
  rc=0
  l0=$(load)
  echo "-- 1. populate: $users customers through POST /v1/batch (load $l0)"
  "${bench[@]}" -m populate -u "$users" -c 32 -b 100 "$@" | tee "$tmp/populate.out" || rc=$?
  rss1=$(rss)
  echo "   server RSS after populate: $rss1"
  t=$SECONDS; settle; echo "   last checkpoint done $((SECONDS - t)) s later"
  l1=$(load)
  tsecs=${BATON_ISSUE3_TRACK_SECONDS:-30}
  echo "-- 2. lat-track: single-event POST /v1/track at 20,000/s, $tsecs s (load $l1)"
  "${bench[@]}" -m lat-track -E -u "$users" -r 20000 -C 256 -d "$tsecs" "$@" | tee "$tmp/track.out" || rc=$?
  settle
  l1b=$(load)
  echo "-- 2b. lat-track: the same over 1,024 connections, $tsecs s (load $l1b)"
  "${bench[@]}" -m lat-track -E -u "$users" -r 20000 -C 1024 -d "$tsecs" "$@" | tee "$tmp/track1024.out" || rc=$?
  settle
  l2=$(load)
  echo "-- 3. lookup: GET /v1/profiles/{id} at 5,000/s on the idle server, 8 s (load $l2)"
  "${bench[@]}" -m lookup -u "$users" -r 5000 -L 64 -d 8 "$@" | tee "$tmp/lookup.out" || rc=$?
  settle
  l3=$(load)
  echo "-- 4. lookup at 5,000/s, 8 s, while another bench_ingest runs batch (closed loop, 32 conns) (load $l3)"
  "${bench[@]}" -m batch -E -u "$users" -c 32 -b 100 -d 12 "$@" >"$tmp/bg.out" 2>&1 &
  bg=$!
  sleep 2
  "${bench[@]}" -m lookup -u "$users" -r 5000 -L 64 -d 8 "$@" | tee "$tmp/lookup-load.out" || rc=$?
  wait "$bg" || rc=$?
  echo "   the background batch load:"
  sed 's/^/   | /' "$tmp/bg.out"
  settle
  l4=$(load)
  echo "-- 5. lookup at 5,000/s, 8 s, while another bench_ingest sends 20,000 events/s (lat-batch, open loop) (load $l4)"
  "${bench[@]}" -m lat-batch -E -u "$users" -c 32 -b 100 -r 20000 -d 12 "$@" >"$tmp/bg2.out" 2>&1 &
  bg=$!
  sleep 2
  "${bench[@]}" -m lookup -u "$users" -r 5000 -L 64 -d 8 "$@" | tee "$tmp/lookup-load2.out" || rc=$?
  wait "$bg" || rc=$?
  echo "   the background load:"
  sed 's/^/   | /' "$tmp/bg2.out"
  l5=$(load)
  pop=$(fig "$tmp/populate.out" populate rate)
  trk=$(fig "$tmp/track.out" lat-track p99)
  lk=$(fig "$tmp/lookup.out" lookup p99)
  lkl=$(fig "$tmp/lookup-load.out" lookup p99)
  echo
  echo "== issue 3 targets: $users customers, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $l0 / $l1 / $l1b / $l2 / $l3 / $l4 / $l5 at the start of each phase and the end"
  printf '%-58s %-16s %-14s %s\n' "figure" "measured" "target" "verdict"
  printf '%-58s %-16s %-14s %s\n' "/v1/batch with identity resolution, events/s durable" "$pop" ">= 150000" "$(verdict "$pop" 150000 ge)"
  printf '%-58s %-16s %-14s %s\n' "  server CPU per event (us), share of one core" "$(fig "$tmp/populate.out" populate cpu_us) us" "$(fig "$tmp/populate.out" populate cpu_pct)%" ""
  printf '%-58s %-16s %-14s %s\n' "  profiles and merges as sent" "$(grep -c 'customers acknowledged.*: match' "$tmp/populate.out" | sed 's/1/match/;s/^0$/MISMATCH/')" "" "server RSS $rss1"
  printf '%-58s %-16s %-14s %s\n' "/v1/track single events at 20,000/s: p99 ms" "$trk" "<= 10" "$(verdict "$trk" 10 le)"
  printf '%-58s %-16s %-14s %s\n' "  achieved requests/s; p50 / p90 / max ms" "$(fig "$tmp/track.out" lat-track rate)" "" "$(fig "$tmp/track.out" lat-track p50) / $(fig "$tmp/track.out" lat-track p90) / $(fig "$tmp/track.out" lat-track max); behind by up to $(fig "$tmp/track.out" lat-track behind) requests; $(fig "$tmp/track.out" lat-track cpu_us) us CPU/request"
  trk2=$(fig "$tmp/track1024.out" lat-track p99)
  printf '%-58s %-16s %-14s %s\n' "  the same over 1,024 connections: p99 ms" "$trk2" "<= 10" "$(verdict "$trk2" 10 le)"
  printf '%-58s %-16s %-14s %s\n' "  achieved requests/s; p50 / p90 / max ms" "$(fig "$tmp/track1024.out" lat-track rate)" "" "$(fig "$tmp/track1024.out" lat-track p50) / $(fig "$tmp/track1024.out" lat-track p90) / $(fig "$tmp/track1024.out" lat-track max); behind by up to $(fig "$tmp/track1024.out" lat-track behind) requests; $(fig "$tmp/track1024.out" lat-track cpu_us) us CPU/request"
  printf '%-58s %-16s %-14s %s\n' "GET /v1/profiles/{id} at 5,000/s, idle: p99 ms" "$lk" "<= 2" "$(verdict "$lk" 2 le)"
  printf '%-58s %-16s %-14s %s\n' "  p50 / p90 / max ms; errors; CPU per lookup" "$(fig "$tmp/lookup.out" lookup p50) / $(fig "$tmp/lookup.out" lookup p90) / $(fig "$tmp/lookup.out" lookup max)" "" "errors $(fig "$tmp/lookup.out" lookup errors); $(fig "$tmp/lookup.out" lookup cpu_us) us"
  printf '%-58s %-16s %-14s %s\n' "GET /v1/profiles/{id} at 5,000/s, under batch load: p99 ms" "$lkl" "<= 2" "$(verdict "$lkl" 2 le)"
  printf '%-58s %-16s %-14s %s\n' "  p50 / p90 / max ms; errors; background events/s" "$(fig "$tmp/lookup-load.out" lookup p50) / $(fig "$tmp/lookup-load.out" lookup p90) / $(fig "$tmp/lookup-load.out" lookup max)" "" "errors $(fig "$tmp/lookup-load.out" lookup errors); batch $(fig "$tmp/bg.out" batch rate) events/s"
  lkl2=$(fig "$tmp/lookup-load2.out" lookup p99)
  printf '%-58s %-16s %-14s %s\n' "GET /v1/profiles/{id} at 5,000/s, 20,000 events/s beside: p99" "$lkl2" "<= 2" "$(verdict "$lkl2" 2 le)"
  printf '%-58s %-16s %-14s %s\n' "  p50 / p90 / max ms; errors; background events/s, p99" "$(fig "$tmp/lookup-load2.out" lookup p50) / $(fig "$tmp/lookup-load2.out" lookup p90) / $(fig "$tmp/lookup-load2.out" lookup max)" "" "errors $(fig "$tmp/lookup-load2.out" lookup errors); lat-batch $(fig "$tmp/bg2.out" lat-batch rate) events/s, p99 $(fig "$tmp/bg2.out" lat-batch p99) ms"
  grep -h -E 'UNANSWERED|LATE|MISMATCH' "$tmp"/*.out | sed 's/^/   ATTENTION: /'
fi
if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf"; fi
echo "server RSS at the end: $(rss)"
kill -TERM "$server"
wait "$server"
src=$?
echo "data dir after stop: log $(du -sm "$tmp/data/log" | cut -f1) MB, store $(du -sm "$tmp/data/store" | cut -f1) MB"

server=
echo "server exit $src; log lines by level: $(grep -o '"level":"[a-z]*"' "$tmp/server.log" | sort | uniq -c | tr -s ' \n' ' ')"
grep -E '"level":"(warn|error)"' "$tmp/server.log" | head -5
exit $rc
