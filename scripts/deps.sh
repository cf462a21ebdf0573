# shellcheck shell=bash
#
# scripts/deps.sh - the Debian 12 packages edgelog needs to build, test and
# benchmark, listed once. Sourced (not run) by test.sh and .ci/run:
#
#   edgelog_deps_missing   print the packages not installed, one a line
#   edgelog_deps_ensure    install what is missing (root, or through sudo);
#                          otherwise print the apt-get line and return 1
#   edgelog_deps_install   apt-get update + install every package (CI)
#
# Why each is here: build-essential/cmake/pkg-config build; zlib (crc32,
# gzip), libcurl (uploader), msgpack-c, xxHash (frame checksums), jansson
# (JSON) are library dependencies; libdeflate
# compresses upload batches (about twice as fast as zlib, bench/upload); check + libsubunit-dev are the unit-test
# framework (Check's pkg-config file names subunit); libsqlite3-dev is for
# bench/ only (the design being replaced); libmicrohttpd-dev serves the
# reference sink in tests; clang-format checks style; clang builds the
# -Werror check beside gcc; binutils gives nm for
# scripts/check-symbols.sh; python3, git and ca-certificates are used by
# scripts and the uploader's TLS tests; openssl (the CLI) makes the CA and
# server certificate that check_uploader_auth's TLS tests serve. gcc-12 brings
# the sanitizer runtimes (libasan8, libubsan1, libtsan2) through
# libgcc-12-dev. libclang-rt-14-dev (libFuzzer and clang's sanitizer
# runtimes) builds the fuzz targets with clang (scripts/fuzz.sh, .ci/run).
# python3-msgpack is the Python package's one dependency
# (python/); python3-pytest runs its tests (CTest label python);
# python3-pip and python3-setuptools install it offline (test_install.py,
# the README's `pip install --no-build-isolation ./python`, in a venv:
# python3-venv). python3-dev gives the headers the Python package's fast
# append (python/edgelog_py.c, libedgelog_py.so) is built with; without it
# the package appends through ctypes and msgpack.
# clickhouse-server is the real destination the clickhouse
# test (tests/clickhouse/) sends to; the test starts its own instance on
# loopback, and skips itself when the package is absent.

EDGELOG_DEPS=(
	build-essential
	cmake
	pkg-config
	git
	zlib1g-dev
	libcurl4-openssl-dev
	libdeflate-dev
	libmsgpack-dev
	libxxhash-dev
	check
	libsubunit-dev
	libjansson-dev
	libsqlite3-dev
	libmicrohttpd-dev
	clang-format
	clang
	ca-certificates
	python3
	binutils
	openssl
	python3-msgpack
	python3-dev
	python3-pytest
	python3-pip
	python3-setuptools
	clickhouse-server
	python3-venv
	systemd
	libclang-rt-14-dev
)

# Only for deploy/e2e.sh (the container end-to-end test, a .ci/run
# section), installed by edgelog_deploy_deps_install, not by test.sh: the
# Docker daemon and client, docker-compose 1.29 (Debian 12 has no compose
# plugin), debootstrap to make a base image without a registry. systemd
# gives systemd-analyze, for the unit check (ctest -L deploy; skipped with
# a message without it); it is in EDGELOG_DEPS above.
EDGELOG_DEPLOY_DEPS=(
	docker.io
	docker-compose
	debootstrap
)

edgelog_deploy_deps_install()
{
	_edgelog_apt install -y --no-install-recommends "${EDGELOG_DEPLOY_DEPS[@]}"
}

edgelog_deps_missing()
{
	local p
	for p in "${EDGELOG_DEPS[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			printf '%s\n' "$p"
		fi
	done
}

# apt-get, as root or through sudo (non-interactive when there is no terminal).
# A freshly booted machine often has apt's daily timer holding the dpkg lock
# for a minute or two: wait for it (up to 10 minutes) instead of failing.
_edgelog_apt()
{
	local wait=(-o DPkg::Lock::Timeout=600)
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" "$@"
	elif command -v sudo >/dev/null 2>&1; then
		if [ -t 0 ]; then
			sudo DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" "$@"
		else
			sudo -n DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" "$@"
		fi
	else
		return 1
	fi
}

edgelog_deps_install()
{
	_edgelog_apt update
	_edgelog_apt install -y --no-install-recommends "${EDGELOG_DEPS[@]}"
}

edgelog_deps_ensure()
{
	local missing
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "deps: not a Debian system; make sure the equivalents of these are installed:" >&2
		echo "  ${EDGELOG_DEPS[*]}" >&2
		return 0
	fi
	missing=$(edgelog_deps_missing | tr '\n' ' ')
	missing=${missing% }
	if [ -z "$missing" ]; then
		return 0
	fi
	echo "deps: missing Debian packages: $missing (installing)"
	# shellcheck disable=SC2086 # one word per package name
	if _edgelog_apt update && _edgelog_apt install -y --no-install-recommends $missing; then
		return 0
	fi
	echo "deps: could not install the packages (not root and no usable sudo). Run:" >&2
	echo "  sudo apt-get install -y --no-install-recommends $missing" >&2
	return 1
}

# Cross builds under qemu-user (scripts/cross.sh; CI only): Debian's cross
# toolchains, qemu-user-static, and per architecture the multiarch -dev
# packages of every library the build and tests link. musl-tools builds
# the core library against musl (scripts/musl-test.sh: the firmware
# profile needs no other library). file names the architecture of what
# was built; e2fsprogs makes the ext4 test image.
EDGELOG_CROSS_DEV=(
	libcurl4-openssl-dev
	libdeflate-dev
	libmsgpack-dev
	libxxhash-dev
	libjansson-dev
	check
	libsubunit-dev
	libmicrohttpd-dev
	zlib1g-dev
)

# edgelog_cross_deps_install ARCH... (arm64, armhf): as root.
edgelog_cross_deps_install()
{
	local arch p pkgs=(qemu-user-static musl-tools file e2fsprogs)
	for arch in "$@"; do
		case $arch in
		arm64) pkgs+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu) ;;
		armhf) pkgs+=(gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf) ;;
		*)
			echo "deps: unknown architecture '$arch'" >&2
			return 2
			;;
		esac
		dpkg --add-architecture "$arch"
		for p in "${EDGELOG_CROSS_DEV[@]}"; do
			pkgs+=("$p:$arch")
		done
	done
	_edgelog_apt update
	_edgelog_apt install -y --no-install-recommends "${pkgs[@]}"
}
