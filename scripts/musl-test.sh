#!/usr/bin/env bash
#
# scripts/musl-test.sh [WORKDIR] - build the core library in the firmware
# profile (EDGELOG_WITH_JSON=OFF, EDGELOG_WITH_UPLOADER=OFF) against musl
# with Debian's musl-tools (musl-gcc), link tests/musl/musl_smoke.c
# statically with libedgelog.a and nothing else (musl's libc holds
# pthreads and libm) and run it: append, close, reopen, append, read back;
# edgelog_append_json says EDGELOG_ENOTSUP.
#
# Dependencies under musl, from Debian 12:
#   xxHash    header only (compiled in): its header is used as is.
#   jansson, msgpack-c  not used by the library (it reads and writes JSON
#             and msgpack itself). Debian's libjansson.a and libmsgpackc.a
#             could not be linked anyway: built with _FORTIFY_SOURCE, they
#             call glibc's __snprintf_chk, __vsnprintf_chk, __strncpy_chk.
#   libcurl   cannot be used: Debian ships no static libcurl dependencies
#             (TLS, nghttp2, ... are shared glibc builds), so the uploader is
#             off under musl; a musl uploader needs libcurl and its TLS
#             library built from source against musl.
#   libdeflate only needed by the uploader.
set -euo pipefail
src="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
work=$(readlink -f "${1:-$(mktemp -d "${TMPDIR:-/tmp}/edgelog-musl-XXXXXX")}")
mkdir -p "$work/include"

command -v musl-gcc >/dev/null || {
	echo "musl-test: musl-gcc not found (Debian: musl-tools)" >&2
	exit 1
}
# xxhash.h alone (not /usr/include, which holds glibc's headers).
cp /usr/include/xxhash.h "$work/include/"

CC=musl-gcc cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
	-DEDGELOG_WITH_UPLOADER=OFF -DEDGELOG_WITH_JSON=OFF -DEDGELOG_BUILD_TOOLS=OFF -DEDGELOG_BUILD_TESTS=OFF \
	-DEDGELOG_BUILD_BENCH=OFF -DEDGELOG_BUILD_SHARED_VARIANT=OFF -DEDGELOG_WERROR=ON \
	-DEDGELOG_XXHASH_INCLUDE_DIR="$work/include" >/dev/null
cmake --build "$work/build" --target edgelog >/dev/null
# The link line is the proof: libedgelog.a and musl's libc, nothing else.
musl-gcc -static -Os -Wall -Wextra -Werror -I"$src/engine/include" \
	-o "$work/musl_smoke" "$src/tests/musl/musl_smoke.c" "$work/build/engine/libedgelog.a"
file "$work/musl_smoke" | sed 's/, BuildID[^,]*//'
rm -rf "$work/data"
"$work/musl_smoke" "$work/data"
