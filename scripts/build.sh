#!/usr/bin/env bash
# Builds Baton into build/ (or the folder given), passing further args to cmake.
# Example: scripts/build.sh build-asan -DBATON_SANITIZE=ON -DCMAKE_C_COMPILER=clang
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null || exit 1
cmake --build "$dir" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking)|^Consolidate'
exit "${PIPESTATUS[0]}"
