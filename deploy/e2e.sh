#!/usr/bin/env bash
#
# deploy/e2e.sh - the container deployment end to end: build the image
# (Dockerfile), bring up docker-compose.yml (inference service + receiver,
# host network, loopback only), and check that every prediction reaches the
# receiver exactly once although the receiver is stopped and restarted
# while the inference service keeps predicting.
#
#   deploy/e2e.sh            (as root, or a user of a running docker daemon)
#
# Where no Docker daemon is available or can be started, it prints
# "SKIP: <why>" and exits 0; with EDGELOG_E2E_REQUIRED=1 (CI) that is a
# failure instead. Exit 1 when a check fails. Bounded in time: each wait
# has a deadline.
#
# Environment: EDGELOG_BASE_IMAGE (base image for both stages; default: one
# made by deploy/base-image.sh with debootstrap, cached in build/e2e-cache),
# EDGELOG_E2E_N (predictions, default 1000), EDGELOG_E2E_KEEP=1 (leave the
# containers and volumes for inspection).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

N=${EDGELOG_E2E_N:-1000}
RATE=50
PROJECT=edgelog-e2e
IMAGE=edgelog:e2e
DEVICE=e2e-camera
# The Debian CLI, when both it and another one are installed.
DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
DOCKERD_PID=

say() { printf 'e2e: %s\n' "$*"; }
skip()
{
	if [ "${EDGELOG_E2E_REQUIRED:-0}" = 1 ]; then
		printf 'e2e: FAIL: cannot run (EDGELOG_E2E_REQUIRED=1): %s\n' "$*" >&2
		exit 1
	fi
	printf 'SKIP: deploy/e2e.sh: %s\n' "$*"
	exit 0
}
fail()
{
	printf 'e2e: FAIL: %s\n' "$*" >&2
	exit 1
}

# ---- a daemon -------------------------------------------------------------
command -v "$DOCKER" >/dev/null 2>&1 || skip "no docker client (Debian package docker.io)"
if command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
elif "$DOCKER" compose version >/dev/null 2>&1; then
	COMPOSE=("$DOCKER" compose)
else
	skip "neither docker-compose (Debian package docker-compose) nor the compose plugin"
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ] || ! command -v dockerd >/dev/null 2>&1; then
		skip "no Docker daemon running, and not root with dockerd to start one"
	fi
	# Containers use the host network only, so the daemon needs no bridge
	# and no iptables rules (which a sandbox may not allow).
	say "starting dockerd (no bridge, no iptables)"
	mkdir -p build
	dockerd --iptables=false --ip6tables=false --bridge=none >build/e2e-dockerd.log 2>&1 &
	DOCKERD_PID=$!
	for _ in $(seq 1 60); do
		"$DOCKER" info >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.5
	done
	"$DOCKER" info >/dev/null 2>&1 ||
		skip "dockerd did not start here: $(tail -n 3 build/e2e-dockerd.log | tr '\n' ' ')"
fi

cleanup()
{
	local rc=$?
	if [ "${EDGELOG_E2E_KEEP:-0}" != 1 ]; then
		compose down -v --remove-orphans >/dev/null 2>&1 || true
	fi
	if [ -n "$DOCKERD_PID" ]; then
		kill "$DOCKERD_PID" 2>/dev/null || true
		wait "$DOCKERD_PID" 2>/dev/null || true
	fi
	exit "$rc"
}
trap cleanup EXIT

# A free loopback port for the receiver (host network).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

compose()
{
	EDGELOG_IMAGE=$IMAGE RECEIVER_PORT=$PORT PREDICTION_COUNT=$N PREDICTIONS_PER_SECOND=$RATE \
		EDGE_DEVICE_ID=$DEVICE EDGELOG_BASE=$BASE EDGELOG_RUNTIME_BASE=$BASE \
		"${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml "$@"
}

# ---- images ---------------------------------------------------------------
t0=$SECONDS
if [ -n "${EDGELOG_BASE_IMAGE:-}" ]; then
	BASE=$EDGELOG_BASE_IMAGE
else
	command -v debootstrap >/dev/null 2>&1 ||
		skip "no base image: set EDGELOG_BASE_IMAGE or install debootstrap"
	BASE=edgelog-base:bookworm
	deploy/base-image.sh "$BASE"
fi
say "building $IMAGE on $BASE"
"$DOCKER" build --network host -q -t "$IMAGE" --build-arg BASE="$BASE" \
	--build-arg RUNTIME_BASE="$BASE" . >/dev/null || fail "docker build"
say "image built ($((SECONDS - t0)) s); runs as $("$DOCKER" run --rm --entrypoint id "$IMAGE" -un)"
[ "$("$DOCKER" run --rm --entrypoint id "$IMAGE" -u)" != 0 ] || fail "the image runs as root"

# ---- the loop -------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d --no-build
say "compose up: inference ($N predictions at $RATE/s) -> receiver on 127.0.0.1:$PORT"

# docker exec straight to the containers: docker-compose (Python) takes a
# second or more to start, too slow to poll with.
INFERENCE=$(compose ps -q inference)
RECEIVER=$(compose ps -q receiver)
[ -n "$INFERENCE" ] && [ -n "$RECEIVER" ] || fail "compose did not start both services"

# seq and n of every record the receiver stored for DEVICE, one a line.
received()
{
	"$DOCKER" exec "$RECEIVER" cat /data/sink/records.ndjson 2>/dev/null |
		python3 -c '
import json, sys
for l in sys.stdin:
    if l.strip():
        r = json.loads(l)
        if r["device_id"] == sys.argv[1]:
            print(r["seq"], r["data"]["n"])' "$DEVICE"
}
status_json() { "$DOCKER" exec "$INFERENCE" edgelog status --json 2>/dev/null; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
wait_until()
{
	local what=$1 secs=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $what"
		sleep 0.5
	done
}
have_received() { [ "$(received | wc -l)" -ge "$1" ]; }

wait_until "the first predictions at the receiver" 60 have_received 1
"$DOCKER" stop -t 10 "$RECEIVER" >/dev/null
say "receiver stopped"

disconnected() { [ "$(status_json | field is_connected)" = False ]; }
wait_until "the engine to notice the outage" 60 disconnected
sleep 3 # more predictions are buffered meanwhile
pending=$(status_json | field pending)
[ "$pending" -gt 0 ] || fail "nothing pending during the outage"
say "outage: $pending predictions buffered in the inference container"
"$DOCKER" start "$RECEIVER" >/dev/null
say "receiver restarted"

delivered() { [ "$(status_json | field sent)" -ge "$N" ] && [ "$(status_json | field pending)" = 0 ]; }
wait_until "all $N predictions delivered" 120 delivered
healthy() { [ "$("$DOCKER" inspect --format '{{.State.Health.Status}}' "$INFERENCE")" = healthy ]; }
wait_until "the inference container's health check" 60 healthy

# ---- the tally by seq ------------------------------------------------------
received | python3 -c '
import collections, sys
n = int(sys.argv[1])
pairs = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
seqs = collections.Counter(s for s, _ in pairs)
dup = [s for s, c in seqs.items() if c > 1]
missing = sorted(set(range(1, n + 1)) - set(seqs))
extra = sorted(set(seqs) - set(range(1, n + 1)))
ns = sorted(k for _, k in pairs)
print("e2e: receiver holds %d records: seq 1..%d, %d missing, %d duplicated, %d unexpected"
      % (len(pairs), n, len(missing), len(dup), len(extra)))
if missing or dup or extra or ns != list(range(n)):
    sys.exit("e2e: FAIL: missing %s duplicated %s unexpected %s" % (missing[:10], dup[:10], extra[:10]))
' "$N"
say "status in the container:"
compose exec -T inference edgelog status 2>/dev/null | sed 's/^/    /'
say "passed in $((SECONDS - t0)) s"
