#!/usr/bin/env bash
# `npm run bench` (after scripts/setup.sh has built dist/): the metadata throughput benchmark,
# then the master-at-scale benchmark. Each starts and removes its own master; tables go to
# stdout, progress to stderr, JSON to /tmp/chunkfs-bench/. SCALE_FILES overrides the file
# count of the scale run (default 1,000,000, several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

node dist/bench/meta.js
echo
node dist/bench/master-scale.js --files "${SCALE_FILES:-1000000}"
