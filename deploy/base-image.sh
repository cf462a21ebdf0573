#!/usr/bin/env bash
#
# deploy/base-image.sh - make a Debian 12 base image without a registry:
# debootstrap (minbase) from the machine's own Debian mirror, then
# `docker import`. For machines that reach a Debian mirror but no image
# registry (CI here); elsewhere use debian:12 / debian:12-slim.
#
#   deploy/base-image.sh [TAG] [CACHE_DIR]
#
# TAG defaults to edgelog-base:bookworm. The root file system tarball is
# kept in CACHE_DIR (default build/e2e-cache, ignored by git) and reused by
# the next run on this machine. Needs root, debootstrap and a running
# docker daemon.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

tag=${1:-edgelog-base:bookworm}
cache=${2:-build/e2e-cache}
tarball=$cache/bookworm-minbase.tar

# The mirror this machine's apt uses (deb822 or one-line sources).
mirror=${EDGELOG_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}
		     /^deb / && $0 ~ / bookworm / && $2 !~ /^\[/ && $2 ~ /debian\/?$/ {print $2; exit}
		     /^deb \[/ && $0 ~ / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i ~ /debian\/?$/) {print $i; exit}}' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if docker image inspect "$tag" >/dev/null 2>&1; then
	echo "base-image: $tag exists"
	exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
	root=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	echo "base-image: debootstrap bookworm from $mirror"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
		tail -n 20 "$cache/debootstrap.log" >&2
		exit 1
	}
	# apt inside the image uses the same mirror; keep images small.
	echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
fi
docker import "$tarball" "$tag" >/dev/null
echo "base-image: $tag from $tarball"
