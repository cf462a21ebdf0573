#!/usr/bin/env bash
# bench/wear.sh - flash wear: bytes the block device writes per record, for
# edgelog and the SQLite buffer it replaces (WAL, synchronous=NORMAL, one
# transaction per insert), at 10, 100 and 1000 records/s, in the same run.
# Root only: it makes a small ext4 file system in a file, mounts it through
# a loop device, runs each case on it and reads the sectors written from
# /sys/block/loopN/stat (field 7) before and after, with a sync on both
# sides. The last column counts the commits of ext4's journal during the
# case (/proc/fs/jbd2/loopN-8/info): each costs the device at least a
# descriptor block, the metadata blocks it logs and a commit block (3 x 4
# KiB for an interval sync into unwritten extents, segments/FORMAT.md,
# "Flash wear").
#
# edgelog runs in its steady state (bench_wear): warmed up at full speed
# until a segment has just been started the way a device that has run for
# a while starts them, then R records/s for SECONDS with every durable
# record acknowledged each second (an uploader that keeps up) and the
# worker's retention running; only that part is counted. Cases:
#   edgelog-fresh     sync=interval 100 ms, segment_reuse=off: every
#                     segment a fresh preallocated file (the engine before
#                     recycling, and what segment_reuse=off keeps)
#   edgelog           the defaults: sync=interval 100 ms, reuse on
#   edgelog@1s        reuse on, sync_interval_ms=1000 (fewer writes)
#   sqlite-normal-1t  bench_append --rate, its files kept until counted
#                     (--keep), so their deletion is not counted
#
#   bench/wear.sh [BUILD_DIR] [SECONDS]     (default build/release, 30)
#
# Exit 0 ok, 1 a case failed, 2 usage (not root, tool or build missing).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build/release}" && pwd)
secs=${2:-30}
bin=$build/bench/bench_append
wbin=$build/bench/bench_wear
rates=${EDGELOG_WEAR_RATES:-10 100 1000}

[ "$(id -u)" -eq 0 ] || { echo "wear.sh: needs root (loop device, mount)" >&2; exit 2; }
[ -x "$bin" ] || { echo "wear.sh: $bin not built" >&2; exit 2; }
[ -x "$wbin" ] || { echo "wear.sh: $wbin not built" >&2; exit 2; }
for t in mkfs.ext4 losetup mount umount; do
	command -v "$t" >/dev/null || { echo "wear.sh: $t not found" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/edgelog-wear.XXXXXX)
img=$work/fs.img
mnt=$work/mnt
loop=
cleanup() {
	if [ -n "$loop" ]; then
		umount "$mnt" 2>/dev/null || true
		losetup -d "$loop" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
truncate -s 1G "$img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
loop=$(losetup --find --show "$img")
mount "$loop" "$mnt"
dev=$(basename "$loop")
sectors() { awk '{print $7}' "/sys/block/$dev/stat"; }
jinfo=$(ls -d /proc/fs/jbd2/"$dev"-* 2>/dev/null | head -1)/info
# journal transactions so far (0 without jbd2)
commits() {
	if [ -r "$jinfo" ]; then
		awk 'NR == 1 { print $1 }' "$jinfo"
	else
		echo 0
	fi
}

printf '%-18s %6s %8s %12s %10s %9s %8s\n' case rate records device_bytes B/record x_record \
	commits
status=0
for rate in $rates; do
	n=$((rate * secs))
	for cc in edgelog-fresh:100:off edgelog:100:on edgelog@1s:1000:on sqlite-normal-1t:100:-; do
		label=${cc%%:*}
		rest=${cc#*:}
		ims=${rest%%:*}
		reuse=${rest#*:}
		rm -rf "$mnt/b" "$work/ready" "$work/go"
		mkdir -p "$mnt/b"
		if [ "$reuse" = - ]; then
			sync
			s0=$(sectors)
			t0=$(commits)
			out=$("$bin" --only "$label" --rate "$rate" --n "$n" --sqlite-n "$n" --keep \
				--no-verify --dir "$mnt/b" 2>/dev/null) || status=1
			sync
			s1=$(sectors)
			t1=$(commits)
			# the record's own size: JSON text for SQLite
			rec=$(printf '%s\n' "$out" | sed -n 's/.*JSON \([0-9.]*\) B.*/\1/p')
		else
			"$wbin" --dir "$mnt/b/db" --rate "$rate" --seconds "$secs" --interval-ms "$ims" \
				--reuse "$reuse" --ready "$work/ready" --go "$work/go" >"$work/out" 2>&1 &
			pid=$!
			while [ ! -e "$work/ready" ] && kill -0 "$pid" 2>/dev/null; do
				sleep 0.1
			done
			sync
			s0=$(sectors)
			t0=$(commits)
			touch "$work/go"
			wait "$pid" || { status=1; cat "$work/out" >&2; }
			sync
			s1=$(sectors)
			t1=$(commits)
			# the record's own size: msgpack
			rec=$(sed -n 's/.*msgpack \([0-9.]*\) B.*/\1/p' "$work/out")
		fi
		awk -v c="$label" -v r="$rate" -v n="$n" -v b="$(((s1 - s0) * 512))" -v rec="$rec" \
			-v t="$((t1 - t0))" \
			'BEGIN { printf "%-18s %6d %8d %12d %10.1f %9.2f %8d\n", c, r, n, b, b / n,
				b / n / rec, t }'
	done
done
rm -rf "$mnt/b"
exit $status
