#!/usr/bin/env bash
# Instructions per evaluation of each bench/expr case, counted by callgrind
# (inclusive cost of baton_expr_eval over N calls, divided by N): a measure
# of the evaluator's own work that the load of a shared machine cannot
# disturb, for before/after comparisons of small changes.
# Usage: bench/expr/callgrind.sh [BUILD_DIR]   (default build; N = 100000)
# BENCH_EXPR_BYTECODE_ONLY=1 in the environment counts the bytecode VM alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build}
n=100000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for name in $(grep -o '"name": "[^"]*"' bench/expr/cases.json | cut -d'"' -f4); do
  BENCH_EXPR_ITERS=$n BENCH_EXPR_CASE=$name valgrind --tool=callgrind \
    --callgrind-out-file="$out/$name" --toggle-collect=baton_expr_eval \
    "$dir/bench/expr/bench_expr" bench/expr/cases.json bench/expr/data.json >/dev/null 2>&1
  ir=$(grep -m1 '^summary:\|^totals:' "$out/$name" | awk '{print $2}')
  awk -v name="$name" -v ir="$ir" -v n="$n" 'BEGIN { printf "%-20s %8.1f instructions/eval\n", name, ir / n }'
done
