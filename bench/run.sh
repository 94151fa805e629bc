#!/usr/bin/env bash
# `npm run bench` (after scripts/setup.sh has built dist/): the metadata throughput benchmark,
# the master-at-scale benchmark, then re-replication speed. Each starts and removes its own
# servers; tables and JSON go to stdout, progress to stderr, JSON files to /tmp/chunkfs-bench/.
# SCALE_FILES overrides the file count of the scale run (default 1,000,000, several minutes);
# VICTIM_MIB the replicas the killed chunkserver holds (default 2048: about 3 GB written).
set -euo pipefail
cd "$(dirname "$0")/.."

node dist/bench/meta.js
echo
node dist/bench/master-scale.js --files "${SCALE_FILES:-1000000}"
echo
node dist/bench/re-replication.js --victim-mib "${VICTIM_MIB:-2048}"
