#!/usr/bin/env bash
# The main job: installs what Baton needs (Debian 12, as root), builds it, and
# starts it on its embedded store with the example configuration and journeys
# (examples/baton.yaml: 127.0.0.1:8080, write key wk_example, admin key
# ak_example, data in ./baton-data). Stop it with Ctrl-C (SIGINT) or SIGTERM.
# Extra arguments go to `baton serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
scripts/build.sh build
exec build/src/baton serve --config examples/baton.yaml "$@"
