#!/usr/bin/env bash
#
# scripts/cross.sh - build edgelog for another Debian architecture with
# Debian's cross toolchain and run its tests under qemu-user, on an ext4
# directory. Run as root on Debian 12 (CI does); each step can run alone:
#
#   scripts/cross.sh deps ARCH...      install the cross compiler, qemu and
#                                      the multiarch -dev packages (arm64, armhf)
#   scripts/cross.sh binfmt            teach binfmt_misc to run ARM programs
#                                      through qemu (for tests that start
#                                      other programs: sink, demo, CLI)
#   scripts/cross.sh ext4 DIR          mount a fresh 1 GiB ext4 image on DIR
#   scripts/cross.sh test ARCH [CTEST ARGS...]
#                                      configure build/cross-ARCH (Release),
#                                      build, run ctest under qemu with TMPDIR
#                                      on the ext4 mount ($EDGELOG_EXT4_DIR,
#                                      default /mnt/edgelog-ext4)
#
# ARCH: arm64 (toolchain cmake/toolchains/aarch64.cmake) or armhf
# (cmake/toolchains/armhf.cmake). Test time limits are scaled by
# EDGELOG_TEST_TIME_FACTOR (default 10 under emulation): CTest's per-test
# timeout, Check's (CK_TIMEOUT_MULTIPLIER) and the waits inside the tests
# that use tu_time_factor(). The slowest randomised runners (check_crash)
# do EDGELOG_TEST_ITERATIONS percent of their trials (default 25 here; the
# full count runs natively in ./test.sh and the sanitizer runs).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

triple()
{
	case $1 in
	arm64) echo aarch64-linux-gnu ;;
	armhf) echo arm-linux-gnueabihf ;;
	*)
		echo "cross.sh: unknown architecture '$1' (arm64 or armhf)" >&2
		exit 2
		;;
	esac
}

toolchain()
{
	case $1 in
	arm64) echo cmake/toolchains/aarch64.cmake ;;
	armhf) echo cmake/toolchains/armhf.cmake ;;
	esac
}

# Register qemu for one ELF machine from qemu-user-static's binfmt
# description, with the F flag (the kernel opens the interpreter now, so it
# also works in other mount namespaces).
binfmt_one()
{
	local name=$1 def=/usr/share/binfmts/$1 magic mask
	if [ -e "/proc/sys/fs/binfmt_misc/$name" ]; then
		return 0
	fi
	magic=$(sed -n 's/^magic //p' "$def")
	mask=$(sed -n 's/^mask //p' "$def")
	printf ':%s:M::%s:%s:/usr/bin/%s-static:F\n' "$name" "$magic" "$mask" "$name" \
		>/proc/sys/fs/binfmt_misc/register
}

cmd=${1:-}
shift || true
case $cmd in
deps)
	# shellcheck source=SCRIPTDIR/deps.sh
	. scripts/deps.sh
	edgelog_cross_deps_install "$@"
	;;
binfmt)
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	fi
	binfmt_one qemu-aarch64
	binfmt_one qemu-arm
	echo "binfmt_misc: $(cd /proc/sys/fs/binfmt_misc && echo qemu-*)"
	;;
ext4)
	dir=${1:?usage: cross.sh ext4 DIR}
	mkdir -p "$dir"
	if mountpoint -q "$dir"; then
		echo "$dir: already mounted ($(stat -f -c %T "$dir"))"
		exit 0
	fi
	img=${dir%/}.img
	rm -f "$img"
	truncate -s 1G "$img"
	mkfs.ext4 -q -F "$img"
	mount -o loop "$img" "$dir"
	chmod 1777 "$dir"
	echo "$dir: ext4 image $img mounted ($(stat -f -c %T "$dir"))"
	;;
test)
	arch=${1:?usage: cross.sh test ARCH [CTEST ARGS...]}
	shift
	t=$(triple "$arch")
	build=build/cross-$arch
	ext4=${EDGELOG_EXT4_DIR:-/mnt/edgelog-ext4}
	factor=${EDGELOG_TEST_TIME_FACTOR:-10}
	iterations=${EDGELOG_TEST_ITERATIONS:-25}
	if [ "$(stat -f -c %T "$ext4" 2>/dev/null)" != ext2/ext3 ]; then
		echo "cross.sh: $ext4 is not an ext4 mount (run: cross.sh ext4 $ext4)" >&2
		exit 1
	fi
	echo "cross.sh: $arch ($t), tests in $ext4 (ext4), time factor $factor, iterations $iterations %"
	cmake -S . -B "$build" --toolchain "$(toolchain "$arch")" -DCMAKE_BUILD_TYPE=Release \
		-DEDGELOG_BUILD_TESTS=ON -DEDGELOG_BUILD_BENCH=OFF -DEDGELOG_BUILD_SHARED_VARIANT=OFF \
		-DEDGELOG_TEST_TIME_FACTOR="$factor" >/dev/null
	cmake --build "$build"
	file "$build/tools/edgelog" | sed 's/, BuildID.*//'
	mkdir -p "$ext4/tmp-$arch"
	export TMPDIR=$ext4/tmp-$arch
	export EDGELOG_TEST_TIME_FACTOR=$factor
	export CK_TIMEOUT_MULTIPLIER=$factor
	export EDGELOG_TEST_ITERATIONS=$iterations
	export CK_DEFAULT_TIMEOUT=600
	(cd "$build" && ctest --output-on-failure "$@")
	;;
*)
	sed -n '3,27p' "$0" >&2
	exit 2
	;;
esac
