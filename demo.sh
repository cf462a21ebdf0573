#!/usr/bin/env bash
#
# demo.sh - the README's first command: build edgelog (installing the Debian
# packages it needs, as root or through sudo) and run `edgelog demo`, which
# appends predictions to a local directory, kills the writer with SIGKILL,
# reopens and shows that nothing accepted was lost. No network needed.
#
#   ./demo.sh                  demo in ./demo-data
#   ./demo.sh --seconds 5      extra arguments go to `edgelog demo`
#
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

# shellcheck source=SCRIPTDIR/scripts/deps.sh
. scripts/deps.sh
edgelog_deps_ensure

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --preset release >/dev/null
cmake --build --preset release --target edgelog_tool >/dev/null
exec build/release/tools/edgelog demo "$@"
