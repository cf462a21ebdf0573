#!/usr/bin/env bash
#
# scripts/musl-test.sh [WORKDIR] - build the core library (no uploader)
# against musl with Debian's musl-tools (musl-gcc), link
# tests/musl/musl_smoke.c statically and run it: append, close, reopen,
# append, read back.
#
# Dependencies under musl, from Debian 12:
#   xxHash    header only (compiled in): its header is used as is.
#   jansson   Debian's libjansson.a cannot be linked: it is built with
#             _FORTIFY_SOURCE and calls glibc's __snprintf_chk,
#             __vsnprintf_chk and __strncpy_chk. Built here from Debian's
#             source package (apt-get source jansson) with musl-gcc.
#   msgpack-c the same (libmsgpackc.a calls __*_chk too): built from
#             Debian's source package msgpack-c.
#   libcurl   cannot be used: Debian ships no static libcurl dependencies
#             (TLS, nghttp2, ... are shared glibc builds), so the uploader is
#             off under musl; a musl uploader needs libcurl and its TLS
#             library built from source against musl.
#   libdeflate only needed by the uploader.
# Needs deb-src entries for bookworm (CI adds them) and dpkg-dev.
set -euo pipefail
src="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
work=$(readlink -f "${1:-$(mktemp -d "${TMPDIR:-/tmp}/edgelog-musl-XXXXXX")}")
mkdir -p "$work/include" "$work/src"

command -v musl-gcc >/dev/null || {
	echo "musl-test: musl-gcc not found (Debian: musl-tools)" >&2
	exit 1
}
# jansson and msgpack-c from Debian's source packages, static, into
# $work/prefix, with musl-gcc.
(cd "$work/src" && apt-get source -q jansson msgpack-c >/dev/null 2>&1) || {
	echo "musl-test: apt-get source jansson msgpack-c failed (deb-src entries?)" >&2
	exit 1
}
CC=musl-gcc cmake -S "$(echo "$work"/src/jansson-*/)" -B "$work/jansson" -DCMAKE_BUILD_TYPE=Release \
	-DJANSSON_BUILD_DOCS=OFF -DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON \
	-DJANSSON_BUILD_SHARED_LIBS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/jansson" >/dev/null
cmake --install "$work/jansson" >/dev/null
CC=musl-gcc cmake -S "$(echo "$work"/src/msgpack-c-*/)" -B "$work/msgpack" -DCMAKE_BUILD_TYPE=Release \
	-DMSGPACK_BUILD_EXAMPLES=OFF -DMSGPACK_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF \
	-DMSGPACK_ENABLE_SHARED=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/msgpack" >/dev/null
cmake --install "$work/msgpack" >/dev/null
# xxhash.h alone (not /usr/include, which holds glibc's headers).
cp /usr/include/xxhash.h "$work/include/"
libdir=$(dirname "$(find "$work/prefix" -name libjansson.a | head -n 1)")
export PKG_CONFIG_LIBDIR=$libdir/pkgconfig

CC=musl-gcc cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
	-DEDGELOG_WITH_UPLOADER=OFF -DEDGELOG_BUILD_TOOLS=OFF -DEDGELOG_BUILD_TESTS=OFF \
	-DEDGELOG_BUILD_BENCH=OFF -DEDGELOG_BUILD_SHARED_VARIANT=OFF -DEDGELOG_WERROR=ON \
	-DEDGELOG_XXHASH_INCLUDE_DIR="$work/include" >/dev/null
cmake --build "$work/build" --target edgelog >/dev/null
musl-gcc -static -Os -Wall -Wextra -Werror -I"$src/engine/include" \
	-o "$work/musl_smoke" "$src/tests/musl/musl_smoke.c" "$work/build/engine/libedgelog.a" \
	-L"$libdir" -ljansson -lmsgpackc -lpthread -lm
file "$work/musl_smoke" | sed 's/, BuildID[^,]*//'
rm -rf "$work/data"
"$work/musl_smoke" "$work/data"
