#!/usr/bin/env bash
# Installs what Baton needs on Debian 12, as root: `deps.sh run` for building and
# running, `deps.sh test` for the whole test suite too (sanitizers, fuzzing,
# browser, node clients). Installs only what is missing; safe to run again.
set -euo pipefail
mode=${1:-run}
cd "$(dirname "$0")/.."

run_pkgs="build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev
  libfyaml-dev liblmdb-dev zlib1g-dev libssl-dev libpcre2-dev tzdata ca-certificates"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev chromium"

pkgs=$run_pkgs
[ "$mode" = test ] && pkgs="$pkgs $test_pkgs"
# Node.js: use the one on the machine if it is recent enough (the machines ship
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm
# package); otherwise take Debian's.
if [ "$mode" = test ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null ||
     [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    pkgs="$pkgs nodejs npm"
  fi
fi
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$mode" = test ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "deps: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
fi
