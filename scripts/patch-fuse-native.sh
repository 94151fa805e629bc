#!/usr/bin/env bash
# Applies patches/fuse-native.patch to node_modules/fuse-native and rebuilds its addon, once per
# patch version (a stamp file records the patch's hash). The patch fixes what standard tools
# hit in fuse-native 2.2.6: utimens passed the access time twice, one-sided utimens was dropped
# by libfuse (flag_utime_omit_ok), stat times had whole milliseconds, fgetattr ignored its file
# handle, and create/mkdir/symlink/mknod did not say who called (new inodes belonged to root)
# nor create its open flags. The rebuilt build/Release/fuse.node is loaded before the prebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=node_modules/fuse-native
PATCH=patches/fuse-native.patch
STAMP=$PKG/.chunkfs-patch
want=$(sha256sum "$PATCH" | cut -d' ' -f1)
[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$PKG/build/Release/fuse.node" ] && exit 0

echo "[setup] patching and rebuilding fuse-native" >&2
if [ -f "$STAMP" ]; then
  echo "[setup] fuse-native carries an older patch: reinstalling it" >&2
  rm -rf "$PKG"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
patch -s -p0 -d node_modules --forward < "$PATCH"
GYP=$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
# Node's headers from the machine (nodedir), never a download.
NODEDIR=$(dirname "$(dirname "$(realpath "$(command -v node)")")")
(cd "$PKG" && node "$GYP" rebuild --nodedir="$NODEDIR" --loglevel=error >&2)
echo "$want" > "$STAMP"
