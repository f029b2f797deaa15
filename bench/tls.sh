#!/usr/bin/env bash
# TLS against plain HTTP on one machine (issue 17's target: TLS ≥ 0.85× plain with
# AES-GCM on AES-NI): two hubctl serve, one with --tls=self-signed, one plain, both
# --auth=none, measured by regbench in the same run (push ×1/×4, pull ×1/×4, manifest
# HEAD/GET). regbench trusts the self-signed CA through SSL_CERT_FILE. The first
# target is TLS, so the ratios are TLS/plain.
#
#   bench/tls.sh                                   # 8 × 64 MiB, 20,000 requests
#   BLOBS=4 SIZE=16MiB REQUESTS=4000 bench/tls.sh   # quick
set -euo pipefail
BENCH_NAME=tls
BLOBS=${BLOBS:-8}
SIZE=${SIZE:-64MiB}
REQUESTS=${REQUESTS:-20000}
ROUNDS=${ROUNDS:-1}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/hubctl-tls.XXXXXX")}
mkdir -p "$work"
pids=()
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop "$pid"; done
	[[ -n ${OUT:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl && go build -o "$work/regbench" ./bench/regbench)
grep -qw aes /proc/cpuinfo && log "AES-NI: yes" || log "AES-NI: no (TLS will cost more than on a server CPU)"

start() { # NAME PORT FLAGS…
	local name=$1 port=$2
	shift 2
	"$work/hubctl" serve --addr "127.0.0.1:$port" --data "$work/$name" --auth=none --gc-interval 0 \
		--retention-interval 0 --metrics-addr off --log-level warn "$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
	echo "$!"
}
tport=$(free_port)
pport=$(free_port)
tpid=$(start tls "$tport" --tls=self-signed --tls-names 127.0.0.1)
ppid=$(start plain "$pport")
for i in $(seq 1 100); do
	[[ -f $work/tls/tls/ca.crt ]] && curl -fsS --cacert "$work/tls/tls/ca.crt" -o /dev/null "https://127.0.0.1:$tport/v2/" 2>/dev/null &&
		curl -fsS -o /dev/null "http://127.0.0.1:$pport/v2/" 2>/dev/null && break
	sleep 0.1
done
SSL_CERT_FILE=$work/tls/tls/ca.crt "$work/regbench" -targets "tls=https://127.0.0.1:$tport,plain=http://127.0.0.1:$pport" \
	-pids "tls=$tpid,plain=$ppid" -blobs "$BLOBS" -size "$SIZE" -requests "$REQUESTS" -rounds "$ROUNDS" \
	-json "$work/tls.json"
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
