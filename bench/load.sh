#!/usr/bin/env bash
# The load benchmark of issue 17: CLIENTS concurrent clients (200) signed in with token
# auth push small images, pull, HEAD manifests and list tags for DURATION (60s) against
# hubctl serve, then against the CNCF distribution registry v3.1.2 under the same load
# with token auth on (tokens from a hubctl token service, which distribution verifies
# with its JWKS). Prints requests/s and p99 of each, their ratio, errors, the servers'
# RSS, goroutines and file descriptors before and after, and the /metrics scrape cost.
#
#   bench/load.sh                                # 200 clients, 60 s, 20 accounts
#   CLIENTS=50 DURATION=15s bench/load.sh        # a quick run
#   OUT=/tmp/load bench/load.sh                  # keep JSON and server logs
#   ONLY=hubctl bench/load.sh                    # skip distribution
#
# Knobs: CLIENTS, DURATION, ACCOUNTS (the clients sign in as this many users of one
# organisation, as a crowd would: per-account limits apply per account), REPOS,
# HUBCTL_TOOLS (where the distribution binary is cached). Exit status 0 with no errors.
set -euo pipefail
BENCH_NAME=load
CLIENTS=${CLIENTS:-200}
DURATION=${DURATION:-60s}
ACCOUNTS=${ACCOUNTS:-20}
REPOS=${REPOS:-0}
ONLY=${ONLY:-}
TOOLS=${HUBCTL_TOOLS:-$HOME/.cache/hubctl/bin}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/hubctl-load.XXXXXX")}
mkdir -p "$work"
# A kept OUT from an earlier run: start from empty registries.
rm -rf "$work/hub" "$work/distribution" "$work/docker" "$work/hubctl.log"
pids=()
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop "$pid"; done
	[[ -n ${OUT:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

# wait_up URL PID LOG: wait until URL answers at all (200 or 401).
wait_up() {
	local i code
	for i in $(seq 1 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true)
		[[ $code == 200 || $code == 401 ]] && return
		kill -0 "$2" 2>/dev/null || {
			tail -n 20 "$3" >&2
			die "server for $1 exited"
		}
		sleep 0.1
	done
	die "$1 did not answer"
}

log "building hubctl and loadgen"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl && go build -o "$work/loadgen" ./bench/loadgen)
export LOADGEN_PASSWORD=load-bench-password
export HUBCTL_ADMIN_PASSWORD=load-bench-admin
export DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG"

# hub PORT [FLAGS…]: start hubctl serve on the benchmark's data directory.
hub() {
	local port=$1
	shift
	"$work/hubctl" serve --addr "127.0.0.1:$port" --data "$work/hub" --gc-interval 0 --retention-interval 0 "$@" \
		>>"$work/hubctl.log" 2>&1 &
	srv_pid=$!
	pids+=("$srv_pid")
	wait_up "http://127.0.0.1:$port/v2/" "$srv_pid" "$work/hubctl.log"
}

port=$(free_port)
mport=$(free_port)
hub "$port" --metrics-addr "127.0.0.1:$mport"
hub_pid=$srv_pid
host=127.0.0.1:$port
log "hubctl serve on $host (pid $hub_pid); $ACCOUNTS accounts in the organisation loadgen"
echo "$HUBCTL_ADMIN_PASSWORD" | "$work/hubctl" login "$host" -u admin --password-stdin >/dev/null 2>&1
"$work/hubctl" org create loadgen --registry "$host" >/dev/null 2>&1
"$work/hubctl" team create loadgen pushers --registry "$host" >/dev/null 2>&1
"$work/hubctl" team grant loadgen pushers write --registry "$host" >/dev/null 2>&1
for i in $(seq 0 $((ACCOUNTS - 1))); do
	echo "$LOADGEN_PASSWORD" | "$work/hubctl" user create "bench-$i" --password-stdin --registry "$host" >/dev/null 2>&1
	"$work/hubctl" team add-member loadgen pushers "bench-$i" --registry "$host" >/dev/null 2>&1
done
user=bench-%d
[[ $ACCOUNTS -gt 1 ]] || user=bench-0

args=(-clients "$CLIENTS" -duration "$DURATION" -user "$user" -accounts "$ACCOUNTS" -repos "$REPOS")
"$work/loadgen" "${args[@]}" -target "hubctl=http://$host" -pid "hubctl=$hub_pid" \
	-metrics "hubctl=http://127.0.0.1:$mport/metrics" -json "$work/hubctl.json" | tee "$work/hubctl.txt"
stop "$hub_pid"
[[ $ONLY == hubctl ]] && exit 0

[[ -x $TOOLS/registry ]] || die "no distribution registry in $TOOLS (run e2e/install-tools.sh)"
# The token service for distribution: hubctl on the same data (same accounts, keys).
tport=$(free_port)
hub "$tport" --metrics-addr off
curl -fsS "http://127.0.0.1:$tport/token/jwks.json" >"$work/jwks.json"
dport=$(free_port)
cat >"$work/distribution.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $work/distribution
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$dport
health:
  storagedriver:
    enabled: false
auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: hubctl
    issuer: hubctl
    jwks: $work/jwks.json
EOF
OTEL_TRACES_EXPORTER=none "$TOOLS/registry" serve "$work/distribution.yml" 2>"$work/distribution.log" >&2 &
dist_pid=$!
pids+=("$dist_pid")
wait_up "http://127.0.0.1:$dport/v2/" "$dist_pid" "$work/distribution.log"
log "distribution on 127.0.0.1:$dport (pid $dist_pid), tokens from hubctl on 127.0.0.1:$tport"
"$work/loadgen" "${args[@]}" -target "distribution=http://127.0.0.1:$dport" -pid "distribution=$dist_pid" \
	-json "$work/distribution.json" | tee "$work/distribution.txt"

python3 - "$work/hubctl.json" "$work/distribution.json" <<'PY' || true
import json, sys
h = json.load(open(sys.argv[1]))[0]
d = json.load(open(sys.argv[2]))[0]
print(f"\nhubctl / distribution: requests/s {h['requests_per_second']/d['requests_per_second']:.2f}x "
      f"({h['requests_per_second']:.0f} vs {d['requests_per_second']:.0f}), "
      f"p99 {h['overall']['p99_ms']:.1f} ms vs {d['overall']['p99_ms']:.1f} ms; "
      f"target: >= 2x at equal or lower p99")
PY
