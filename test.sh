#!/usr/bin/env bash
#
# test.sh - build edgelog and run its whole test suite (every label: unit,
# integration, crash, fuzz). Installs the Debian packages it needs first
# (as root, or through sudo), so it works on a fresh machine.
#
#   ./test.sh              everything
#   ./test.sh -L unit      extra arguments go to ctest
#
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

# shellcheck source=SCRIPTDIR/scripts/deps.sh
. scripts/deps.sh
edgelog_deps_ensure

export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-600}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"

cmake --preset dev
cmake --build --preset dev
ctest --preset dev "$@"
