#!/usr/bin/env bash
#
# demo.sh - the README's first command: build edgelog (installing the Debian
# packages it needs, as root or through sudo) and run `edgelog demo`: an
# inference loop logs predictions to ./demo-data while edgelog uploads them to
# a reference sink on loopback; the sink is killed for a while (edgelog
# buffers, pending grows) and brought back (the backlog drains by itself);
# the tally at the end shows every prediction arrived exactly once. About
# 30 s; no network beyond 127.0.0.1.
#
#   ./demo.sh                  the outage demo in ./demo-data
#   ./demo.sh --seconds 10     extra arguments go to `edgelog demo`
#   ./demo.sh --crash          kill -9 the writer mid-append: nothing lost
#
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

# shellcheck source=SCRIPTDIR/scripts/deps.sh
. scripts/deps.sh
edgelog_deps_ensure

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --preset release >/dev/null
cmake --build --preset release --target edgelog_dev_tool >/dev/null
exec build/release/tools/edgelog-dev demo "$@"
