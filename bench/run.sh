#!/usr/bin/env bash
# Benchmark `hubctl serve` against the CNCF distribution registry on loopback, both on
# the same storage, and compare with the targets of issue 2 (filesystem) or issue 4
# (STORAGE=s3). See bench/README.md.
#
# Environment (defaults are the full run):
#   BLOBS=8 SIZE=64MiB CHUNK=8MiB PARALLEL=1,4   blob push/pull
#   REQUESTS=20000 WORKERS=8                      manifest HEAD/GET loop
#   ROUNDS=1                                      repeat and report medians
#   MONO=auto                                     monolithic push: auto, post or put (regbench -mono)
#   RSS_SIZE=1GiB                                 blob streamed while sampling hubctl's RSS
#   STORAGE=disk                                  where both registries keep their data, in turn
#                                                 ("tmpfs disk s3" runs all): disk is $TMPDIR;
#                                                 s3 is one versitygw on loopback (a bucket
#                                                 each, pulls by presigned redirect for both);
#                                                 tmpfs (/dev/shm) takes the disk out, but its
#                                                 data cannot be recycled, so keep ROUNDS=1 and
#                                                 WARM above 4 GiB per round there
#   DB=sqlite                                     hubctl's metadata: sqlite, or postgres for a
#                                                 throwaway PostgreSQL cluster on loopback
#                                                 (Debian's server binaries; run as the
#                                                 postgres user when we are root)
#   WARM=6GiB                                     memory touched (and freed) before each run
#   OUT=DIR                                       keep the JSON results and server logs here
#   HUBCTL_TOOLS=~/.cache/hubctl/bin              where the distribution binary is cached
# Quick run: BLOBS=4 SIZE=16MiB REQUESTS=2000 RSS_SIZE=256MiB bench/run.sh
#
# Exit status: 0 all targets met, 3 a target missed, anything else an error.
set -euo pipefail

BLOBS=${BLOBS:-8}
SIZE=${SIZE:-64MiB}
CHUNK=${CHUNK:-8MiB}
PARALLEL=${PARALLEL:-1,4}
REQUESTS=${REQUESTS:-20000}
WORKERS=${WORKERS:-8}
ROUNDS=${ROUNDS:-1}
MONO=${MONO:-auto}
RSS_SIZE=${RSS_SIZE:-1GiB}
OUT=${OUT:-}
STORAGE=${STORAGE:-disk}
DB=${DB:-sqlite}
WARM=${WARM:-6GiB}
TOOLS=${HUBCTL_TOOLS:-$HOME/.cache/hubctl/bin}
DIST_MODULE=github.com/distribution/distribution/v3/cmd/registry@v3.1.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubctl-bench.XXXXXX")
pids=()
pg_stop=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${#pg_stop[@]} -gt 0 ]]; then
		"${pg_stop[@]}" >/dev/null 2>&1 || true
	fi
	if [[ -n $OUT ]]; then
		mkdir -p "$OUT"
		cp "$work"/*.json "$work"/*.log "$OUT"/ 2>/dev/null || true
	fi
	rm -rf "$work" "${shm:-}"
}
trap cleanup EXIT
# Turn Ctrl-C into a normal exit so the EXIT trap stops the servers.
trap 'exit 130' INT TERM

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# data_root STORAGE: the directory that holds the registries' data for that storage.
data_root() {
	case $1 in
	tmpfs) echo "$shm" ;;
	disk | s3) echo "$work" ;;
	*) die "STORAGE: unknown storage $1 (tmpfs, disk or s3)" ;;
	esac
}

# start_s3: start versitygw on a free port over a directory under $work with buckets hub
# and dist; sets s3_url. Both registries then store blobs in the same S3 server.
start_s3() {
	local port dir=$work/s3 b
	port=$(free_port)
	mkdir -p "$dir"
	[[ -x $TOOLS/versitygw ]] || die "versitygw is missing: run e2e/install-tools.sh"
	ROOT_ACCESS_KEY=benchak ROOT_SECRET_KEY=benchsecretkey "$TOOLS/versitygw" --port "127.0.0.1:$port" --region us-east-1 posix "$dir" >"$work/versitygw.log" 2>&1 &
	pids+=("$!")
	s3_pid=$!
	s3_url=http://127.0.0.1:$port
	for b in hub dist; do
		for i in $(seq 1 50); do
			curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user benchak:benchsecretkey \
				-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
				-X PUT "$s3_url/$b" >/dev/null 2>&1 && break
			sleep 0.1
		done
	done
}

# start_hubctl NAME ROOT [STORAGE]: start `hubctl serve` on a free port with its data
# under ROOT (blobs in the S3 server when STORAGE is s3); sets hub_pid and hub_url. Auth
# is off, as distribution's is, so both serve the same unauthenticated requests.
start_hubctl() {
	local logf=$work/$1.log addr="" i
	local extra=()
	if [[ ${3:-} == s3 ]]; then
		extra=(--storage s3 --s3-endpoint "$s3_url" --s3-bucket hub --s3-region us-east-1 --s3-path-style)
	fi
	if [[ $DB == postgres ]]; then
		extra+=(--db "$(new_database "$1")")
	fi
	HUBCTL_STORAGE_S3_ACCESS_KEY=benchak HUBCTL_STORAGE_S3_SECRET_KEY=benchsecretkey \
		"$work/hubctl" serve --auth=none --addr 127.0.0.1:0 --data "$2/$1-data" "${extra[@]}" 2>"$logf" &
	hub_pid=$!
	pids+=("$hub_pid")
	for i in $(seq 1 100); do
		addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$logf" | head -n 1)
		[[ -n $addr ]] && break
		kill -0 "$hub_pid" 2>/dev/null || {
			tail -n 20 "$logf" >&2
			die "hubctl serve exited"
		}
		sleep 0.1
	done
	[[ -n $addr ]] || die "hubctl serve printed no 'listening on' line within 10s"
	hub_url=http://$addr
	wait_v2 "$hub_url" "$hub_pid" "$logf"
}

# start_postgres: a throwaway PostgreSQL cluster on a free loopback port, its data and
# socket under $work/pg; sets pg_port. PostgreSQL refuses to run as root, so as root it
# runs as the postgres system user.
start_postgres() {
	local bin as=()
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[[ -x $bin/initdb ]] || die "DB=postgres needs PostgreSQL's server binaries (apt-get install postgresql)"
	mkdir -p "$work/pg"
	if [[ $(id -u) == 0 ]]; then
		chown postgres "$work/pg"
		chmod o+x "$work"
		as=(runuser -u postgres --)
	fi
	pg_port=$(free_port)
	"${as[@]}" "$bin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 >"$work/pg-init.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$work/pg-init.log")"
	"${as[@]}" "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
		-o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null ||
		die "PostgreSQL did not start: $(tail -n 5 "$work/pg/server.log")"
	pg_stop=("${as[@]}" "$bin/pg_ctl" -D "$work/pg/data" -m fast stop)
	pg_pid=$(head -n 1 "$work/pg/data/postmaster.pid")
}

# new_database NAME: create a fresh database in the cluster and print its URL.
new_database() {
	local name="${1//-/_}_$RANDOM"
	psql -h 127.0.0.1 -p "$pg_port" -U postgres -q -c "CREATE DATABASE $name" >/dev/null ||
		die "CREATE DATABASE $name failed"
	echo "postgres://postgres@127.0.0.1:$pg_port/$name?sslmode=disable"
}

# start_distribution ROOT: start the CNCF registry on a free port with its data under
# ROOT; sets dist_pid and dist_url.
start_distribution() {
	local driver
	mkdir -p "$1/distribution-data"
	# The same storage as hubctl. Redirects only where the driver has them.
	driver="  filesystem:
    rootdirectory: $1/distribution-data
  redirect:
    disable: true"
	if [[ ${2:-} == s3 ]]; then
		driver="  s3:
    accesskey: benchak
    secretkey: benchsecretkey
    region: us-east-1
    regionendpoint: $s3_url
    bucket: dist
    forcepathstyle: true
    secure: false
    v4auth: true
    chunksize: 8388608
  redirect:
    disable: false"
	fi
	run_distribution distribution "$driver"
	dist_pid=$srv_pid
	dist_url=http://$srv_host
}

command -v go >/dev/null || die "go is not installed"
command -v curl >/dev/null || die "curl is not installed"

log "building hubctl and regbench"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl && go build -o "$work/regbench" ./bench/regbench)

if [[ ! -x $TOOLS/registry ]]; then
	log "installing the distribution registry into $TOOLS (about 4 minutes)"
	mkdir -p "$TOOLS"
	GOBIN=$TOOLS go install "$DIST_MODULE"
fi

shm=$(mktemp -d /dev/shm/hubctl-bench.XXXXXX)
case $DB in
sqlite) ;;
postgres) start_postgres ;;
*) die "DB: unknown metadata store $DB (sqlite or postgres)" ;;
esac
status=0
for storage in $STORAGE; do
	root=$(data_root "$storage")
	warm_memory
	[[ $storage == s3 ]] && start_s3
	start_hubctl hubctl "$root" "$storage"
	start_distribution "$root" "$storage"
	log "storage $storage: hubctl serve $hub_url (pid $hub_pid), distribution $dist_url (pid $dist_pid), data under $root"
	# The S3 server and PostgreSQL work for the registries too: their CPU during each
	# registry's operations is reported next to the registries' own.
	backend=()
	[[ $storage == s3 ]] && backend+=("$s3_pid")
	[[ -n ${pg_pid:-} ]] && backend+=("$pg_pid")
	backend_pids=$(IFS=,; echo "${backend[*]}")
	goals=issue2
	[[ $storage == s3 ]] && goals=issue4
	st=0
	"$work/regbench" -targets "hubctl=$hub_url,distribution=$dist_url" \
		-blobs "$BLOBS" -size "$SIZE" -chunk "$CHUNK" -parallel "$PARALLEL" \
		-requests "$REQUESTS" -workers "$WORKERS" -rounds "$ROUNDS" -mono "$MONO" \
		-pids "hubctl=$hub_pid,distribution=$dist_pid" ${backend_pids:+-backend-pids "$backend_pids"} \
		-check -goals "$goals" -json "$work/throughput-$storage.json" || st=$?
	[[ $st == 0 || $st == 3 ]] || die "regbench failed (exit $st)"
	[[ $st == 0 ]] || status=$st
	stop "$hub_pid"
	stop "$dist_pid"
	rm -rf "$root/hubctl-data" "$root/distribution-data"
done

# Memory is measured on a fresh process with nothing else running, so VmHWM is the peak
# of this stream alone and the other registry takes no CPU.
warm_memory
start_hubctl hubctl-rss "$work"
log "RSS: streaming $RSS_SIZE through hubctl serve (pid $hub_pid)"
rss_status=0
"$work/regbench" -targets "hubctl=$hub_url" -pid "$hub_pid" -rss-size "$RSS_SIZE" -chunk "$CHUNK" -mono "$MONO" \
	-check -json "$work/rss.json" || rss_status=$?
[[ $rss_status == 0 || $rss_status == 3 ]] || die "regbench -pid failed (exit $rss_status)"
stop "$hub_pid"

if [[ $status == 0 && $rss_status == 0 ]]; then
	log "all targets met"
else
	log "some targets were missed (see MISSED above)"
	exit 3
fi
