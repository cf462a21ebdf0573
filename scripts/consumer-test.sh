#!/usr/bin/env bash
#
# scripts/consumer-test.sh [WORKDIR] - install edgelog into temporary
# prefixes with `cmake --install --prefix` and build tests/consumer/main.c
# (open, append, close, read back) from a clean directory four ways, running
# each program:
#
#   find_package(edgelog), static library   (the firmware profile: JSON
#   pkg-config --static, static library      input and uploader off; Debian
#                                            ships no static libcurl
#                                            dependencies anyway)
#   find_package(edgelog), shared library   (uploader and JSON on)
#   pkg-config, shared library
#
# The firmware profile's static consumers must link with libedgelog.a and
# libc alone: `pkg-config --static --libs edgelog` names nothing else and
# the programs need no shared library but libc.
#
# Also checks that the installed edgelog.pc and the segdump/segtail links
# point inside the prefix. Exit 0 when every way builds and runs.
set -euo pipefail
src="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
work=$(readlink -f "${1:-$(mktemp -d "${TMPDIR:-/tmp}/edgelog-consumer-XXXXXX")}")
mkdir -p "$work"
echo "consumer-test: working in $work"

common=(-DCMAKE_BUILD_TYPE=Release -DEDGELOG_BUILD_TESTS=OFF -DEDGELOG_BUILD_BENCH=OFF
	-DEDGELOG_BUILD_DEV_TOOLS=OFF -DEDGELOG_BUILD_SHARED_VARIANT=OFF)

# Configure with the default prefix (/usr/local) and install elsewhere: the
# installed files must not remember the configure-time prefix.
cmake -S "$src" -B "$work/build-static" "${common[@]}" -DBUILD_SHARED_LIBS=OFF \
	-DEDGELOG_WITH_UPLOADER=OFF -DEDGELOG_WITH_JSON=OFF -DEDGELOG_BUILD_TOOLS=OFF >/dev/null
cmake --build "$work/build-static" >/dev/null
cmake --install "$work/build-static" --prefix "$work/static" >/dev/null
cmake -S "$src" -B "$work/build-shared" "${common[@]}" -DBUILD_SHARED_LIBS=ON >/dev/null
cmake --build "$work/build-shared" >/dev/null
cmake --install "$work/build-shared" --prefix "$work/shared" >/dev/null

fail()
{
	echo "consumer-test: FAILED: $*" >&2
	exit 1
}

pc_of()
{
	find "$1" -name edgelog.pc | head -n 1
}

for p in static shared; do
	pc=$(pc_of "$work/$p")
	[ -n "$pc" ] || fail "$p: no edgelog.pc installed"
	if grep -q /usr/local "$pc"; then
		fail "$pc names /usr/local"
	fi
	for l in segdump segtail; do
		if [ "$p" = shared ]; then
			[ "$(readlink "$work/$p/bin/$l")" = edgelog ] || fail "$p/bin/$l is not a link to edgelog"
		fi
	done
done

needed()
{
	readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '
}

# run NAME PROGRAM: runs it on a fresh directory; prints its shared libraries.
run()
{
	local name=$1 prog=$2 out
	rm -rf "$work/data-$name"
	out=$("$prog" "$work/data-$name") || fail "$name: the consumer did not run"
	printf '%-24s %s\n    needs: %s\n' "$name" "$out" "$(needed "$prog")"
}

# find_package, static and shared.
for p in static shared; do
	cmake -S "$src/tests/consumer" -B "$work/cmake-$p" -DCMAKE_PREFIX_PATH="$work/$p" \
		-DCMAKE_BUILD_TYPE=Release >/dev/null || fail "find_package($p): configure"
	cmake --build "$work/cmake-$p" >/dev/null || fail "find_package($p): build"
	run "find_package $p" "$work/cmake-$p/consumer"
done
case "$(needed "$work/cmake-static/consumer")" in
*libedgelog*) fail "the static consumer needs a shared libedgelog" ;;
esac
case "$(needed "$work/cmake-shared/consumer")" in
*libedgelog.so*) ;;
*) fail "the shared consumer does not use libedgelog.so" ;;
esac

# pkg-config, static and shared (the system's directories stay in the path
# for edgelog's own dependencies).
cc=${CC:-cc}
pcdir=$(dirname "$(pc_of "$work/static")")
# shellcheck disable=SC2046 # pkg-config prints one flag per word
"$cc" -o "$work/pc-static" "$src/tests/consumer/main.c" \
	$(PKG_CONFIG_PATH="$pcdir" pkg-config --static --cflags --libs edgelog) ||
	fail "pkg-config --static: build"
run "pkg-config static" "$work/pc-static"
libs=$(PKG_CONFIG_PATH="$pcdir" pkg-config --static --libs edgelog)
echo "firmware profile, pkg-config --static --libs edgelog: $libs"
case "$libs" in
"-L"*" -ledgelog" | "-L"*" -ledgelog ") ;;
*) fail "the firmware profile's static library needs more than libc: $libs" ;;
esac
for p in "$work/cmake-static/consumer" "$work/pc-static"; do
	case "$(needed "$p")" in
	"libc.so.6 " | "libc.so.6 ld-linux"*) ;;
	*) fail "$p (firmware profile, static) needs $(needed "$p")" ;;
	esac
done
pcdir=$(dirname "$(pc_of "$work/shared")")
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir edgelog)
# shellcheck disable=SC2046
"$cc" -o "$work/pc-shared" "$src/tests/consumer/main.c" \
	$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs edgelog) -Wl,-rpath,"$libdir" ||
	fail "pkg-config shared: build"
run "pkg-config shared" "$work/pc-shared"
echo "consumer-test: all four ways build and run"
