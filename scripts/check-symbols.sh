#!/usr/bin/env bash
#
# scripts/check-symbols.sh BUILD_DIR - prove that no unprefixed global
# symbol escapes the edgelog library, so a static link into firmware never
# collides with the integrator's names (style.md, "Names").
#
# Looks for libedgelog.a and/or libedgelog.so* in BUILD_DIR/engine (else
# anywhere under BUILD_DIR) and checks:
#   - every defined global symbol (nm -g --defined-only) starts with one of
#     edgelog_ seg_ cur_ cmp_ upl_ eng_ tool_
#   - for a shared library, every exported dynamic symbol (nm -D) starts
#     with edgelog_ (the module prefixes are internal: hidden visibility)
# Prints the offenders and exits 1 if any; exits 2 on a usage error or
# when no library is found (build first).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR   (a configured and built build directory)" >&2
	exit 2
fi
build=$1

allowed='^(edgelog_|seg_|cur_|cmp_|upl_|eng_|tool_)'
exported='^edgelog_'
# Symbols the linker itself defines in a shared object.
linker='^(_init|_fini|_edata|_end|__bss_start|_GLOBAL_OFFSET_TABLE_|_DYNAMIC)$'

find_libs()
{
	find "$1" \( -name 'libedgelog.a' -o -name 'libedgelog.so*' \) -type f 2>/dev/null | sort
}

libs=""
if [ -d "$build/engine" ]; then
	libs=$(find_libs "$build/engine")
fi
if [ -z "$libs" ]; then
	libs=$(find_libs "$build")
fi
if [ -z "$libs" ]; then
	echo "check-symbols: no libedgelog.a or libedgelog.so* under $build; build it first" >&2
	exit 2
fi

status=0
# verdict LIB OFFENDERS WHAT OK: the offenders under "LIB: WHAT:" (and
# status 1), or "LIB: OK" when there are none.
verdict()
{
	if [ -n "$2" ]; then
		echo "check-symbols: $1: $3:"
		echo "$2"
		status=1
	else
		echo "check-symbols: $1: $4"
	fi
}

while IFS= read -r lib; do
	# --format=posix -A: "lib[member]: NAME TYPE VALUE SIZE" (archives) or
	# "lib: NAME TYPE VALUE SIZE" (shared objects).
	total=$(nm -g --defined-only --format=posix -A "$lib" | wc -l)
	bad=$(nm -g --defined-only --format=posix -A "$lib" |
		awk -v ok="$allowed" -v ld="$linker" '$2 !~ ok && $2 !~ ld { print "  " $1 " " $3 " " $2 }')
	verdict "$lib" "$bad" "global symbols without a module prefix" \
		"$total global symbols, all prefixed"

	case "$lib" in
	*.so*)
		bad=$(nm -D --defined-only --format=posix "$lib" |
			awk -v ok="$exported" -v ld="$linker" '$1 !~ ok && $1 !~ ld { print "  " $2 " " $1 }')
		verdict "$lib" "$bad" "exported symbols outside the public API (edgelog_)" \
			"exported symbols are all edgelog_*"
		;;
	esac
done <<<"$libs"

exit $status
