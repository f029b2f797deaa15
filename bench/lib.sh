# Shell functions shared by bench/run.sh and bench/client.sh. Source it after setting
# BENCH_NAME (the prefix of log lines), work (the run's directory), TOOLS (where the
# distribution binary is), shm (a directory on tmpfs), WARM and the pids array (the servers started, which stop removes
# from).

log() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# stop PID: SIGTERM one server we started and wait for it.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local kept=() pid
	for pid in "${pids[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
	pids=("${kept[@]}")
}

# free_port prints a loopback port nobody listens on right now.
free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
		return
	fi
	local port i
	for i in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "no free port found"
}

# wait_v2 URL PID LOG: wait until the registry answers /v2/, or fail with its log.
wait_v2() {
	local i
	for i in $(seq 1 100); do
		if curl -fsS -o /dev/null "$1/v2/" 2>/dev/null; then
			return
		fi
		kill -0 "$2" 2>/dev/null || {
			tail -n 20 "$3" >&2
			die "server for $1 exited"
		}
		sleep 0.1
	done
	tail -n 20 "$3" >&2
	die "$1/v2/ did not answer within 10s"
}


# run_distribution NAME DRIVER: start the CNCF registry on a free port with the storage
# section DRIVER (YAML, indented two spaces) and the configuration both benchmarks use:
# deletes on, the in-memory blob descriptor cache (distribution's shipped default, which
# helps it), no upload purging. Sets srv_pid and srv_host.
run_distribution() {
	local port
	port=$(free_port)
	cat >"$work/$1.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
$2
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
health:
  storagedriver:
    enabled: false
EOF
	OTEL_TRACES_EXPORTER=none "$TOOLS/registry" serve "$work/$1.yml" 2>"$work/$1.log" >&2 &
	srv_pid=$!
	pids+=("$srv_pid")
	srv_host=127.0.0.1:$port
	wait_v2 "http://$srv_host" "$srv_pid" "$work/$1.log"
}

# warm_memory: write and free $WARM on tmpfs. On a VM the first touch of a guest page
# is several times slower than reuse (the host backs it lazily), and a registry writing
# blobs into the page cache pays that per page: measured here, the same push ran at
# 250-350 MiB/s on never-touched memory and 900+ MiB/s on reused memory. Touching it
# first makes the registries write into warm pages (README.md, "This machine's memory
# decides write benchmarks").
warm_memory() {
	[[ $WARM == 0 ]] && return
	local mib
	mib=$(numfmt --from=iec "${WARM%iB}")
	mib=$((mib / 1048576))
	log "warming $WARM of memory"
	dd if=/dev/zero of="$shm/warm" bs=1M count="$mib" status=none
	rm -f "$shm/warm"
}
