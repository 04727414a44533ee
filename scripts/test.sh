#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. installs what the tests need (apt packages, npm ci),
#   2. builds three trees: build/ (release), build-asan/ (ASan+UBSan, clang),
#      build-fuzz/ (libFuzzer targets, clang),
#   3. runs every fuzz target for FUZZ_SECONDS (default 20) on its seed corpus,
#   4. runs the unit tests (ctest) and the end-to-end tests (node --test) on
#      the sanitizer build, then on the release build,
#   5. prints each runner's summary and a total "N passed, N failed" last.
# Exit status: 0 only if everything passed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/deps.sh test || exit 1
export BATON_ORACLES=${BATON_ORACLES:-$root/../shared/oracles}
logs=$root/build-logs
rm -rf "$logs" && mkdir -p "$logs"

echo "== build (release, asan+ubsan, fuzz)"
scripts/build.sh build || exit 1
CC=clang scripts/build.sh build-asan -DBATON_SANITIZE=ON -DCMAKE_C_COMPILER=clang || exit 1
CC=clang scripts/build.sh build-fuzz -DBATON_FUZZ=ON -DCMAKE_C_COMPILER=clang || exit 1

passed=0 failed=0
count() { # name status
  if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}

echo "== fuzz (${FUZZ_SECONDS:-20}s each)"
for f in build-fuzz/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); name=${name#fuzz_}
  corpus=$(mktemp -d)
  cp -r fuzz/"$name"/corpus/. "$corpus"/ 2>/dev/null || true
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$root/fuzz/lsan.supp \
    "$f" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=65536 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$logs/fuzz-$name-" "$corpus" \
    >"$logs/fuzz-$name.log" 2>&1
  st=$?
  tail -n 2 "$logs/fuzz-$name.log"
  count "fuzz $name" $st
  [ $st = 0 ] || tail -n 40 "$logs/fuzz-$name.log"
  rm -rf "$corpus"
done

run_suite() { # build dir, label
  local dir=$1 label=$2
  echo "== unit tests ($label)"
  (cd "$dir" && ctest --output-on-failure -j2) >"$logs/ctest-$label.log" 2>&1
  local st=$?
  grep -E 'tests passed|Failed|\*\*\*' "$logs/ctest-$label.log" | tail -n 20
  count "ctest $label" $st
  [ $st = 0 ] || tail -n 80 "$logs/ctest-$label.log"
  echo "== end-to-end tests ($label)"
  local suites=()
  for d in tests/e2e tests/diff; do [ -d "$d" ] && suites+=("$d/"); done
  local conc=()
  node --help | grep -q -- --test-concurrency && conc=(--test-concurrency=1)
  BATON_BIN=$root/$dir/src/baton node --test "${conc[@]}" \
    --test-reporter=spec "${suites[@]}" >"$logs/node-$label.log" 2>&1
  st=$?
  count "node $label" $st
  [ $st = 0 ] || grep -B2 -A30 -E '^not ok|✖' "$logs/node-$label.log" | head -n 200
}

ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite build-asan asan
run_suite build release

echo "== summaries"
for l in "$logs"/ctest-*.log; do echo "$(basename "$l" .log): $(grep -E 'tests passed' "$l")"; done
for l in "$logs"/node-*.log; do
  echo "$(basename "$l" .log):"; grep -E '^ℹ (tests|pass|fail|skipped)' "$l"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
