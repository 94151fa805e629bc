#!/usr/bin/env bash
# Idempotent set-up used by `npm start`, `npm test` and CI: Debian packages (when root and
# missing), node modules (when missing or stale), and the build. Safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# libfuse3-dev: what the mount's binding (mount/native) is built against; fuse3: fusermount
# (coexists with MooseFS's); rsync, git and attr (setfattr, getfattr): the mount's shell-tool tests;
# libfaketime: the test of a mount whose wall clock steps; strace: the order of a chunkserver's
# syncs and renames (spare-rename test).
DEB_PACKAGES=(libfuse3-dev fuse3 rsync git attr libfaketime strace)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[setup] WARNING: missing Debian packages (${missing[*]}); install them as root" >&2
  fi
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

bash scripts/build-fuse-addon.sh

echo "[setup] build" >&2
npm run --silent build >&2
