#!/usr/bin/env bash
# Ingest benchmark: builds if needed, starts `baton serve` on a fresh data
# directory (port 0, fsync on), runs bench_ingest's modes against it, stops
# the server and prints a summary. Everything the server wrote is removed.
#
#   bench/ingest/run.sh                  # batch, lat-track, lat-batch; 8 s each
#   bench/ingest/run.sh -m batch -c 64   # extra options go to bench_ingest
#   BATON_HTTP_THREADS=1 bench/ingest/run.sh   # limits.http_threads (default: one per core)
#   BATON_DATA=/path bench/ingest/run.sh       # data directory on another disk
#   BATON_CHECKPOINT=1h bench/ingest/run.sh    # engine.checkpoint_interval (default 2s)
#   BATON_NO_FSYNC=1 bench/ingest/run.sh       # engine.unsafe_no_fsync: NOT durable, for comparison
#   BATON_PERF=out.data bench/ingest/run.sh -m batch   # perf record the server meanwhile
#   BATON_BIN=/path/to/baton bench/ingest/run.sh      # another build of the server (A/B)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x build/src/baton ] || [ ! -x build/bench/ingest/bench_ingest ]; then
  scripts/build.sh build >/dev/null || { echo "build failed" >&2; exit 1; }
fi
tmp=$(mktemp -d "${BATON_DATA:-${TMPDIR:-/tmp}}/baton-bench-ingest.XXXXXX")
server=
cleanup() {
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
  echo "log_level: info"
  if [ -n "${BATON_CHECKPOINT:-}${BATON_NO_FSYNC:-}" ]; then
    echo "engine:"
    [ -n "${BATON_CHECKPOINT:-}" ] && echo "  checkpoint_interval: $BATON_CHECKPOINT"
    [ -n "${BATON_NO_FSYNC:-}" ] && echo "  unsafe_no_fsync: true"
  fi
  if [ -n "${BATON_HTTP_THREADS:-}" ]; then
    echo "limits:"
    echo "  http_threads: $BATON_HTTP_THREADS"
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
threads=$(grep -m1 '"listening"' "$tmp/server.log" | sed -n 's/.*"threads":\([0-9]*\).*/\1/p')
echo "== bench/ingest $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   server pid $server port $port, http threads $threads, data dir $tmp ($([ -n "${BATON_NO_FSYNC:-}" ] && echo 'fsync OFF: acknowledgements are not durable' || echo 'fsync on'))"
perf=
if [ -n "${BATON_PERF:-}" ]; then
  perf record -q -e cpu-clock -F 1000 --call-graph dwarf,8192 -p "$server" -o "$BATON_PERF" \
    2>/dev/null &
  perf=$!
  sleep 0.5
fi
build/bench/ingest/bench_ingest -p "$port" -k wk_bench -a ak_bench -P "$server" "$@"
rc=$?
if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf"; fi
kill -TERM "$server"
wait "$server"
src=$?
echo "data dir after stop: log $(du -sm "$tmp/data/log" | cut -f1) MB, store $(du -sm "$tmp/data/store" | cut -f1) MB"

server=
echo "server exit $src; log lines by level: $(grep -o '"level":"[a-z]*"' "$tmp/server.log" | sort | uniq -c | tr -s ' \n' ' ')"
grep -E '"level":"(warn|error)"' "$tmp/server.log" | head -5
exit $rc
