#!/usr/bin/env bash
# Runs chartbench (the classic chart index at 10,000 versions, issue 15) on SQLite and on
# PostgreSQL, RUNS times each, alternating, with a fresh database per run. PostgreSQL is
# a throwaway cluster on a free loopback port (as root it runs as the postgres user).
#
#   bench/chartbench/run.sh                    # RUNS=3, the default sizes
#   RUNS=5 bench/chartbench/run.sh -uploads 500  # more runs; flags go to chartbench
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_NAME=chartbench
pids=()
source bench/lib.sh

RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/chartbench-run.XXXXXX)
pg_stop=()
cleanup() {
	if ((${#pg_stop[@]})); then "${pg_stop[@]}" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $bin/initdb ]] || die "PostgreSQL's server binaries are missing (apt-get install postgresql)"
mkdir -p "$work/pg"
as=()
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

go build -o "$work/chartbench" ./bench/chartbench
for run in $(seq 1 "$RUNS"); do
	log "run $run/$RUNS: SQLite"
	"$work/chartbench" "$@"
	db="bench_$run"
	"$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -q -c "CREATE DATABASE $db" >/dev/null
	log "run $run/$RUNS: PostgreSQL"
	"$work/chartbench" -db "postgres://postgres@127.0.0.1:$pg_port/$db?sslmode=disable" "$@"
done
