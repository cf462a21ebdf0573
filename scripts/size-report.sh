#!/usr/bin/env bash
#
# scripts/size-report.sh [--check] [WORKDIR] - what edgelog costs in a
# firmware image. Builds at -Os (MinSizeRel) without and with the uploader
# and prints the stripped sizes of the static library (libedgelog.a) and of
# the device program (edgelog), and the shared libraries each program
# pulls in (the whole closure, as ldd resolves it, with its size on disk).
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
		-DEDGELOG_BUILD_SHARED_VARIANT=OFF "$@" >/dev/null
	cmake --build "$b" --target edgelog edgelog_tool >/dev/null
	strip --strip-unneeded -o "$b/libedgelog.stripped.a" "$b/engine/libedgelog.a"
	strip -o "$b/edgelog.stripped" "$b/tools/edgelog"
	size[lib.$name]=$(stat -c %s "$b/libedgelog.stripped.a")
	size[bin.$name]=$(stat -c %s "$b/edgelog.stripped")
}

# closure PROGRAM: "N libraries, K KiB: lib1 lib2 ..." (libc's own excluded
# from the names, counted in the size).
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
		libc.so* | libm.so* | ld-linux*) ;;
		*) printf ' %s' "${f##*/}" ;;
		esac
	done
	echo
}

build core -DEDGELOG_WITH_UPLOADER=OFF
build uploader -DEDGELOG_WITH_UPLOADER=ON

kib()
{
	awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'
}
echo "edgelog size report ($(cc --version | head -n 1), -Os, stripped)"
printf '  %-44s %10s  %s\n' "libedgelog.a, core (JSON in, uploader off)" "${size[lib.core]}" "$(kib "${size[lib.core]}")"
printf '  %-44s %10s  %s\n' "libedgelog.a, core + uploader" "${size[lib.uploader]}" "$(kib "${size[lib.uploader]}")"
printf '  %-44s %10s  %s\n' "edgelog (device program), uploader off" "${size[bin.core]}" "$(kib "${size[bin.core]}")"
printf '  %-44s %10s  %s\n' "edgelog (device program), uploader on" "${size[bin.uploader]}" "$(kib "${size[bin.uploader]}")"
echo "shared libraries pulled in (the static library needs the same at link time):"
echo "  uploader off: $(closure "$work/core/tools/edgelog")"
echo "  uploader on:  $(closure "$work/uploader/tools/edgelog")"

if [ "$check" = 1 ]; then
	rc=0
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
