#!/usr/bin/env bash
# Builds the mount's FUSE binding (mount/native: libfuse 3's low-level API served from Node's
# event loop) when its sources changed since the last build (a stamp records their hash).
# Node's headers come from the machine (nodedir), never a download.
set -euo pipefail
cd "$(dirname "$0")/../mount/native"
STAMP=build/.sources-sha256
want=$(cat binding.gyp *.c *.h | sha256sum | cut -d' ' -f1)
[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f build/Release/chunkfs_fuse.node ] && exit 0

echo "[setup] building the FUSE binding" >&2
GYP=$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
NODEDIR=$(dirname "$(dirname "$(realpath "$(command -v node)")")")
node "$GYP" rebuild --nodedir="$NODEDIR" --loglevel=error >&2
echo "$want" > "$STAMP"
