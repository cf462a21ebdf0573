#!/usr/bin/env bash
#
# scripts/size-report.sh [--check] [WORKDIR] - what edgelog costs in a
# firmware image. Builds at -Os (MinSizeRel) three ways: the firmware
# profile (EDGELOG_WITH_JSON=OFF, EDGELOG_WITH_UPLOADER=OFF: libc and the
# xxHash header only), with JSON input, and with JSON input and the
# uploader; prints the stripped sizes of the static library (libedgelog.a)
# and of the device program (edgelog), and the shared libraries each
# pulls in: libedgelog.so's and the program's own (the whole closure, as
# ldd resolves it, with its size on disk).
#
# --check compares the sizes with the budget in scripts/size-budget.txt and
# exits 1 when one is more than 10 % over it. Update the budget in the same
# commit as a change that grows the code on purpose.
set -euo pipefail
src="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
work=$(readlink -f "${1:-$(mktemp -d "${TMPDIR:-/tmp}/edgelog-size-XXXXXX")}")
budget_file=$src/scripts/size-budget.txt
mkdir -p "$work"

declare -A size
# build NAME ARGS...: a MinSizeRel build of the library and the device program.
build()
{
	local name=$1 b=$work/$1
	shift
	cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=MinSizeRel -DEDGELOG_BUILD_TESTS=OFF \
		-DEDGELOG_BUILD_BENCH=OFF -DEDGELOG_BUILD_DEV_TOOLS=OFF \
		-DEDGELOG_BUILD_SHARED_VARIANT=ON "$@" >/dev/null
	cmake --build "$b" --target edgelog edgelog_shared edgelog_tool >/dev/null
	strip --strip-unneeded -o "$b/libedgelog.stripped.a" "$b/engine/libedgelog.a"
	strip -o "$b/edgelog.stripped" "$b/tools/edgelog"
	size[lib.$name]=$(stat -c %s "$b/libedgelog.stripped.a")
	size[bin.$name]=$(stat -c %s "$b/edgelog.stripped")
}

# closure PROGRAM: "N libraries, K KiB: lib1 lib2 ..." (libc and the
# dynamic loader counted, not named).
closure()
{
	local libs total=0 f
	libs=$(ldd "$1" | awk '/=>/ {print $3}' | sort -u)
	for f in $libs; do
		total=$((total + $(stat -L -c %s "$f")))
	done
	printf '%d shared libraries, %d KiB:' "$(echo "$libs" | wc -l)" $((total / 1024))
	for f in $libs; do
		case ${f##*/} in
		libc.so* | ld-linux*) ;;
		*) printf ' %s' "${f##*/}" ;;
		esac
	done
	echo
}

build core -DEDGELOG_WITH_JSON=OFF -DEDGELOG_WITH_UPLOADER=OFF
build json -DEDGELOG_WITH_JSON=ON -DEDGELOG_WITH_UPLOADER=OFF
build uploader -DEDGELOG_WITH_JSON=ON -DEDGELOG_WITH_UPLOADER=ON

kib()
{
	awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'
}
echo "edgelog size report ($(cc --version | head -n 1), -Os, stripped)"
row()
{
	printf '  %-60s %10s  %s\n' "$1" "${size[$2]}" "$(kib "${size[$2]}")"
}
row "libedgelog.a, core (firmware profile: no JSON, no uploader)" lib.core
row "libedgelog.a, core + JSON input" lib.json
row "libedgelog.a, core + JSON input + uploader" lib.uploader
row "edgelog (device program), core" bin.core
row "edgelog (device program), core + JSON input" bin.json
row "edgelog (device program), core + JSON input + uploader" bin.uploader
echo "shared libraries pulled in (a static libedgelog.a needs the same at link time):"
for p in core json uploader; do
	echo "  $p: libedgelog.so: $(closure "$work/$p/engine/libedgelog.so")"
	echo "  $p: edgelog:       $(closure "$work/$p/tools/edgelog")"
done

# The firmware profile's library needs libc alone (glibc's dynamic loader,
# part of libc, for its thread-local error message).
core_needed=$(readelf -d "$work/core/engine/libedgelog.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "firmware profile: libedgelog.so needs: $core_needed"

if [ "$check" = 1 ]; then
	rc=0
	case $core_needed in
	"libc.so.6 " | "libc.so.6 ld-linux"*" ") ;;
	*)
		echo "size budget: the firmware profile's library needs more than libc: $core_needed" >&2
		rc=1
		;;
	esac
	while read -r key limit; do
		case $key in '' | '#'*) continue ;; esac
		have=${size[$key]:-}
		if [ -z "$have" ]; then
			echo "size budget: unknown entry '$key' in $budget_file" >&2
			rc=1
			continue
		fi
		if [ $((have * 10)) -gt $((limit * 11)) ]; then
			echo "size budget: $key is $have bytes, more than 10 % over its budget of $limit" >&2
			rc=1
		else
			echo "size budget: $key $have bytes (budget $limit, +10 % allowed)"
		fi
	done <"$budget_file"
	exit "$rc"
fi
