#!/usr/bin/env bash
#
# scripts/fuzz.sh - build the libFuzzer targets of tests/fuzz (clang,
# ASan + UBSan: the `fuzz` preset, build/fuzz) and run each for a while.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGET names (default: all, fuzz_*).
# Each target starts from a working corpus in build/fuzz/corpus/TARGET,
# seeded from tests/fuzz/corpus/TARGET (checked in: seeds and regression
# inputs) and from gen_seeds' fresh output when the dev build has it; new
# inputs the fuzzer finds stay in the working corpus, never in the tree.
# A crash or a failed invariant leaves build/fuzz/artifacts/TARGET/crash-*
# and makes the script exit 1; add such an input to tests/fuzz/corpus/
# TARGET/regress-* once fixed, so ./test.sh replays it for good. Prints
# executions per target. Scratch files go to /dev/shm when it is usable
# (the segment and append targets write files), else $TMPDIR or /tmp.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

secs=${1:-60}
shift || true
case $secs in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
	mapfile -t targets < <(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//' | grep -v '^fuzz_util$')
fi
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
root=$PWD/build/fuzz
gen=build/dev/tests/fuzz/gen_seeds
fresh=""
if [ -x "$gen" ]; then
	fresh=$(mktemp -d)
	"$gen" "$fresh"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary=""
for t in "${targets[@]}"; do
	bin=$root/tests/fuzz/$t
	if [ ! -x "$bin" ]; then
		echo "fuzz: no target $t" >&2
		exit 2
	fi
	work=$root/corpus/$t
	art=$root/artifacts/$t
	mkdir -p "$work" "$art"
	seeds=(tests/fuzz/corpus/"$t")
	if [ -n "$fresh" ] && [ -d "$fresh/$t" ]; then
		seeds+=("$fresh/$t")
	fi
	log=$root/artifacts/$t.log
	echo "== $t: ${secs}s"
	rc=0
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
		-artifact_prefix="$art/" "$work" "${seeds[@]}" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	grep -E '^#[0-9]+ +DONE|invariant failed|ERROR:|SUMMARY:' "$log" | tail -n 4 || true
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $rc); see $log and $art/"
		failed=1
	fi
	summary+=$(printf '%-20s %12s executions in %ss%s' "$t" "${execs:-?}" "$secs" \
		"$([ "$rc" -ne 0 ] && echo '  FAILED')")$'\n'
done
[ -n "$fresh" ] && rm -rf "$fresh"
printf '\nexecutions per target:\n%s' "$summary"
exit "$failed"
