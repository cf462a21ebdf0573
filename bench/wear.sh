#!/usr/bin/env bash
# bench/wear.sh - flash wear: bytes the block device writes per record, for
# edgelog (default settings: sync=interval, 100 ms; and sync_interval_ms =
# 1000, the setting for fewer writes) and the SQLite buffer it
# replaces (WAL, synchronous=NORMAL, one transaction per insert), at 10, 100
# and 1000 records/s, in the same run. Root only: it makes a small ext4 file
# system in a file, mounts it through a loop device, runs each case on it
# (bench_append --rate) and reads the sectors written from
# /sys/block/loopN/stat (field 7) before and after, with a sync on both
# sides. The case's files are kept until the count is read (--keep), so
# their deletion is not counted; everything else the case caused is (data,
# journal commits, metadata, the final flush). The last column counts the
# commits of ext4's journal during the case (/proc/fs/jbd2/loopN-8/info):
# each costs the device at least a descriptor block, the metadata blocks it
# logs and a commit block (3 x 4 KiB for an interval sync of edgelog's,
# segments/FORMAT.md, "Flash wear").
#
#   bench/wear.sh [BUILD_DIR] [SECONDS]     (default build/release, 30)
#
# Exit 0 ok, 1 a case failed, 2 usage (not root, tool or build missing).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build/release}" && pwd)
secs=${2:-30}
bin=$build/bench/bench_append
rates=${EDGELOG_WEAR_RATES:-10 100 1000}

[ "$(id -u)" -eq 0 ] || { echo "wear.sh: needs root (loop device, mount)" >&2; exit 2; }
[ -x "$bin" ] || { echo "wear.sh: $bin not built" >&2; exit 2; }
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
	# interval-1t twice: the default sync_interval_ms (100) and the setting
	# for fewer writes (1000, reported as "interval-1t@1s")
	for cc in interval-1t:100 interval-1t:1000 sqlite-normal-1t:100; do
		c=${cc%%:*}
		ims=${cc#*:}
		label=$c
		[ "$ims" = 100 ] || label="$c@$((ims / 1000))s"
		rm -rf "$mnt/b"
		mkdir -p "$mnt/b"
		sync
		s0=$(sectors)
		t0=$(commits)
		out=$("$bin" --only "$c" --rate "$rate" --n "$n" --sqlite-n "$n" --keep \
			--interval-ms "$ims" --no-verify --dir "$mnt/b" 2>/dev/null) || status=1
		sync
		s1=$(sectors)
		t1=$(commits)
		# the record's own size: msgpack for edgelog, JSON text for SQLite
		if [ "$c" = interval-1t ]; then
			rec=$(printf '%s\n' "$out" | sed -n 's/.*msgpack \([0-9.]*\) B.*/\1/p')
		else
			rec=$(printf '%s\n' "$out" | sed -n 's/.*JSON \([0-9.]*\) B.*/\1/p')
		fi
		awk -v c="$label" -v r="$rate" -v n="$n" -v b="$(((s1 - s0) * 512))" -v rec="$rec" \
			-v t="$((t1 - t0))" \
			'BEGIN { printf "%-18s %6d %8d %12d %10.1f %9.2f %8d\n", c, r, n, b, b / n,
				b / n / rec, t }'
	done
done
rm -rf "$mnt/b"
exit $status
