#!/usr/bin/env bash
# Soak: the load of bench/load.sh against one hubctl serve for a long time (1 h by
# default), in rounds, and the drift between rounds: requests/s, p99, RSS, goroutines
# and file descriptors of each round, then first round against last. A server that
# leaks shows it as a slope here long before it falls over.
#
#   bench/soak.sh                               # 60 rounds of 60 s, 200 clients
#   ROUNDS=5 ROUND=20s CLIENTS=50 bench/soak.sh # a quick one
#   OUT=/tmp/soak bench/soak.sh                 # keep the per-round JSON and the log
set -euo pipefail
BENCH_NAME=soak
CLIENTS=${CLIENTS:-200}
ROUND=${ROUND:-60s}
ROUNDS=${ROUNDS:-60}
ACCOUNTS=${ACCOUNTS:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/hubctl-soak.XXXXXX")}
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

(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl && go build -o "$work/loadgen" ./bench/loadgen)
export LOADGEN_PASSWORD=soak-password HUBCTL_ADMIN_PASSWORD=soak-admin DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG"
port=$(free_port)
mport=$(free_port)
# GC and retention on, as on a real host: the soak includes them.
"$work/hubctl" serve --addr "127.0.0.1:$port" --data "$work/hub" --metrics-addr "127.0.0.1:$mport" \
	--gc-interval 10m >>"$work/hubctl.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
for i in $(seq 1 100); do
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") == 401 ]] && break
	sleep 0.1
done
host=127.0.0.1:$port
echo "$HUBCTL_ADMIN_PASSWORD" | "$work/hubctl" login "$host" -u admin --password-stdin >/dev/null 2>&1
"$work/hubctl" org create loadgen --registry "$host" >/dev/null 2>&1
"$work/hubctl" team create loadgen pushers --registry "$host" >/dev/null 2>&1
"$work/hubctl" team grant loadgen pushers write --registry "$host" >/dev/null 2>&1
for i in $(seq 0 $((ACCOUNTS - 1))); do
	echo "$LOADGEN_PASSWORD" | "$work/hubctl" user create "bench-$i" --password-stdin --registry "$host" >/dev/null 2>&1
	"$work/hubctl" team add-member loadgen pushers "bench-$i" --registry "$host" >/dev/null 2>&1
done
# Untagged images go after a day: retention runs on the soak's data.
"$work/hubctl" repo policy set loadgen --tags 'c*' --keep-newest 50 --untagged-older-than 1h --registry "$host" >/dev/null 2>&1

log "hubctl serve pid $hub_pid on $host: $ROUNDS rounds of $ROUND with $CLIENTS clients"
printf 'round\treq/s\tp99_ms\terrors\trss_mib\tfds\tgoroutines\tload\n' | tee "$work/rounds.tsv"
failed=0
for r in $(seq 1 "$ROUNDS"); do
	"$work/loadgen" -clients "$CLIENTS" -duration "$ROUND" -user bench-%d -accounts "$ACCOUNTS" \
		-target "hubctl=http://$host" -pid "hubctl=$hub_pid" -metrics "hubctl=http://127.0.0.1:$mport/metrics" \
		-json "$work/round-$r.json" >"$work/round-$r.txt" 2>&1 || failed=1
	python3 - "$work/round-$r.json" "$r" <<'PY' | tee -a "$work/rounds.tsv"
import json, sys
d = json.load(open(sys.argv[1]))[0]
print("\t".join(str(x) for x in [sys.argv[2], round(d["requests_per_second"]), d["overall"]["p99_ms"], d["errors"],
      d["after_proc"]["rss_kib"] >> 10, d["after_proc"]["fds"], d["goroutines_after"], d["load_average"].split()[0]]))
PY
done
python3 - "$work/rounds.tsv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
a, b = rows[0], rows[-1]
print(f"\ndrift over {len(rows)} rounds: req/s {a['req/s']} -> {b['req/s']}, p99 {a['p99_ms']} -> {b['p99_ms']} ms, "
      f"RSS {a['rss_mib']} -> {b['rss_mib']} MiB, fds {a['fds']} -> {b['fds']}, goroutines {a['goroutines']} -> {b['goroutines']}, "
      f"errors {sum(int(r['errors']) for r in rows)}")
PY
exit "$failed"
