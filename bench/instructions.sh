#!/usr/bin/env bash
# bench/instructions.sh - instructions per append (edgelog_append and
# edgelog_append_json), counted by valgrind's callgrind: deterministic, the
# same figure on a busy or an idle machine.
#
#   bench/instructions.sh [BUILD_DIR] [N]     (default build/release, 20000)
#
# Runs bench_instr once under callgrind. The figure is marginal: the
# instructions between the dump after N appends and the dump after 2N
# appends (in the same process, after open), divided by N. It refuses a
# build that is not Release (a Debug build counts 3-4x more); set
# EDGELOG_INSTR_ANY_BUILD=1 to measure one anyway. Needs valgrind
# (apt-get install valgrind). Exit 0 ok, 1 failed run, 2 usage/missing tool.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build/release}" && pwd)
n=${2:-20000}
bin=$build/bench/bench_instr

command -v valgrind >/dev/null || {
	echo "instructions.sh: valgrind not found (apt-get install valgrind)" >&2
	exit 2
}
[ -x "$bin" ] || {
	echo "instructions.sh: $bin not built (cmake --preset release && cmake --build --preset release)" >&2
	exit 2
}
bt=$(grep -E '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2 || true)
if [ "$bt" != "Release" ] && [ "${EDGELOG_INSTR_ANY_BUILD:-0}" != 1 ]; then
	echo "instructions.sh: $build is a '$bt' build, not Release" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
	"$bin" "$tmp/data" "$n" >"$tmp/stdout" 2>"$tmp/stderr") || {
	cat "$tmp/stderr" >&2
	exit 1
}
# Dumps: cg.out.1 append-N, .2 append-2N, .3 json-N, .4 json-2N, final.
summary() { awk '/^summary:/ {print $2}' "$tmp/cg.out.$1"; }
a=$(summary 2)
j=$(summary 4)
cat "$tmp/stdout"
awk -v a="$a" -v j="$j" -v n="$n" 'BEGIN {
	printf "edgelog_append       %7.0f instructions per append (marginal, N=%d)\n", a / n, n
	printf "edgelog_append_json  %7.0f instructions per append (marginal, N=%d)\n", j / n, n
}'
if [ "${EDGELOG_INSTR_PROFILE:-0}" = 1 ] && command -v callgrind_annotate >/dev/null; then
	echo "--- edgelog_append window, by function (instructions over all N) ---"
	callgrind_annotate --threshold=100 "$tmp/cg.out.2" 2>/dev/null | grep -E "^ *[0-9,]+ " | head -25
	echo "--- edgelog_append_json window ---"
	callgrind_annotate --threshold=100 "$tmp/cg.out.4" 2>/dev/null | grep -E "^ *[0-9,]+ " | head -25
fi
