#!/usr/bin/env bash
# mount-compare.sh — the shared workload (../shared/bench/workload.sh) on a ChunkFS mount, on
# MooseFS (same chunkservers, same replication) and on a C FUSE passthrough of the local disk
# (bindfs: the ceiling of FUSE here) in one run, one target at a time, then a table.
#
#   MooseFS durable: MFS_CS_FSYNC=1 MFS_CHANGELOG_SAVE_MODE=2 (data on disk at close, metadata
#   fsynced before the answer: what ChunkFS promises); MooseFS defaults: survives a process crash,
#   not a power cut. Targets: chunkfs, moosefs-durable, moosefs-default, bindfs.
#
# Environment: SHARED_BENCH (../shared/bench), CS (3 chunkservers), GOAL (3 replicas), ROUNDS (1),
#   TARGETS ("moosefs-durable moosefs-default chunkfs bindfs"), RESULTS (/tmp/chunkfs-bench/compare),
#   and the workload's WL_* sizes, reduced here by default so a round takes minutes:
#   WL_SEQ_SIZE=256M WL_NFILES=1000 WL_NDIRS=500 WL_TAR_SRC=/usr/include/linux WL_RAND_RUNTIME=10.
#   The workload's own sizes (the README's first table, about 2 min a round per target):
#   WL_SEQ_SIZE=1G WL_NFILES=5000 WL_NDIRS=2000 WL_TAR_SRC=/usr/include WL_RAND_RUNTIME=20.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${SHARED_BENCH:-$ROOT/../shared/bench}
CS=${CS:-3}; GOAL=${GOAL:-3}; ROUNDS=${ROUNDS:-1}
TARGETS=${TARGETS:-moosefs-durable moosefs-default chunkfs bindfs}
export ANCHORS_RESULTS=${RESULTS:-/tmp/chunkfs-bench/compare}
export WL_SEQ_SIZE=${WL_SEQ_SIZE:-256M} WL_NFILES=${WL_NFILES:-1000} WL_NDIRS=${WL_NDIRS:-500}
export WL_TAR_SRC=${WL_TAR_SRC:-/usr/include/linux} WL_RAND_RUNTIME=${WL_RAND_RUNTIME:-10}
mkdir -p "$ANCHORS_RESULTS"
# The peers' tools, when root and missing (MooseFS itself: see ../shared/bench/README.md).
for tool in fio bindfs; do
  command -v $tool >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null; } || true
done
# A copy of the shared scripts with one fix: mawk prints sums past 2^31 as 1.08e+11, which
# moosefs-up.sh then feeds to shell arithmetic.
COPY=$(mktemp -d /tmp/chunkfs-shared-bench.XXXXXX)
trap 'rm -rf "$COPY"' EXIT
cp -a "$B/." "$COPY/"
sed -i "s/awk '{print \$1 + \$2}'/awk '{printf \"%.0f\", \$1 + \$2}'/" "$COPY/moosefs-up.sh"
B=$COPY
log() { echo "[mount-compare] $*" >&2; }

run_moosefs() { # NAME, extra env
  local name=$1; shift
  "$B/moosefs-down.sh" --wipe >/dev/null 2>&1 || true
  local mnt
  mnt=$(env MFS_CHUNKSERVERS="$CS" MFS_GOAL="$GOAL" "$@" "$B/moosefs-up.sh" | tail -1)
  "$B/run-target.sh" "$name" "$mnt" 1
  "$B/moosefs-down.sh" --wipe >/dev/null 2>&1 || true
}

run_bindfs() {
  "$B/bindfs-down.sh" --wipe >/dev/null 2>&1 || true
  local mnt
  mnt=$("$B/bindfs-up.sh" | tail -1)
  "$B/run-target.sh" bindfs "$mnt" 1 || true
  "$B/bindfs-down.sh" --wipe >/dev/null 2>&1 || true
}

run_chunkfs() {
  local dir
  dir=$(mktemp -d /tmp/chunkfs-compare.XXXXXX)
  node "$ROOT/dist/bin/chunkfs.js" up --dir "$dir/data" --mount "$dir/mnt" --listen 127.0.0.1:0 \
    --chunkservers "$CS" --replication "$GOAL" >"$dir/up.log" 2>&1 &
  local up=$!
  for _ in $(seq 1 60); do grep -q 'cluster up' "$dir/up.log" && break; sleep 1; done
  grep -q 'cluster up' "$dir/up.log" || { cat "$dir/up.log" >&2; kill -INT $up; exit 1; }
  "$B/run-target.sh" chunkfs "$dir/mnt" 1 || true
  kill -INT $up; wait $up || true
  fusermount -uz "$dir/mnt" 2>/dev/null || true
  rm -rf "$dir"
}

for round in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do
    log "round $round: $t"
    case $t in
      moosefs-durable) run_moosefs moosefs-durable MFS_CS_FSYNC=1 MFS_CHANGELOG_SAVE_MODE=2 ;;
      moosefs-default) run_moosefs moosefs-default ;;
      chunkfs) run_chunkfs ;;
      bindfs) run_bindfs ;;
    esac
  done
done
python3 "$B/table.py" "$ANCHORS_RESULTS" $TARGETS
