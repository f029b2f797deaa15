#!/usr/bin/env bash
# Benchmark hubctl's client verbs (copy, mirror) against crane, skopeo and regctl on
# loopback, all moving the same images between the same two registries. See
# bench/README.md ("Client").
#
# Source: one `hubctl serve`, seeded with a 1 GiB image (8 layers × 128 MiB of random
# bytes, stored gzip) and 20 repositories × 3 tags of small images (3 layers of 1–4 MiB,
# the first shared by the tags of a repository). Destination: a fresh registry for every
# timed pair (cold run into an empty registry, then the same command again with nothing
# to move), so no tool finds blobs another tool left behind.
#
# Environment (defaults are the full run):
#   ROUNDS=3                        repeat every measurement, report medians
#   DEST=hubctl                     destination registry: hubctl (serve) or distribution
#   CLIENTS="hubctl crane skopeo regctl"   the tools measured (hubctl must be one)
#   LAYERS=8 LAYER_SIZE=128MiB      the big image
#   REPOS=20 SMALL_SIZE=1MiB-4MiB   the mirror set (3 tags × 3 layers per repository)
#   WARM=4GiB                       memory touched (and freed) on tmpfs first, as run.sh
#   OUT=DIR                         keep results.tsv and the logs here
#   HUBCTL_TOOLS=~/.cache/hubctl/bin   crane, regctl, registry (e2e/install-tools.sh)
# Quick run: ROUNDS=1 LAYER_SIZE=32MiB REPOS=5 bench/client.sh
#
# Exit status: 0 all targets met, 3 a target missed, 1 an error or a wrong digest.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DEST=${DEST:-hubctl}
CLIENTS=${CLIENTS:-hubctl crane skopeo regctl}
LAYERS=${LAYERS:-8}
LAYER_SIZE=${LAYER_SIZE:-128MiB}
REPOS=${REPOS:-20}
SMALL_SIZE=${SMALL_SIZE:-1MiB-4MiB}
WARM=${WARM:-4GiB}
OUT=${OUT:-}
TOOLS=${HUBCTL_TOOLS:-$HOME/.cache/hubctl/bin}
TAGS=(t1 t2 t3)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubctl-clientbench.XXXXXX")
pids=()
bad=0 # a tool produced a wrong digest

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $OUT ]]; then
		mkdir -p "$OUT"
		cp "$work"/results.tsv "$work"/*.log "$OUT"/ 2>/dev/null || true
		cp -r "$work/logs" "$OUT"/ 2>/dev/null || true
	fi
	rm -rf "$work" "${shm:-}"
}
trap cleanup EXIT
# Turn Ctrl-C into a normal exit so the EXIT trap stops the servers.
trap 'exit 130' INT TERM

BENCH_NAME=client-bench
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# start_hubctl NAME DATA: start `hubctl serve` without auth on a free loopback port with
# its data in DATA; sets srv_pid and srv_host (127.0.0.1:PORT).
start_hubctl() {
	local logf=$work/$1.log addr="" i
	"$work/hubctl" serve --auth=none --addr 127.0.0.1:0 --data "$2" 2>"$logf" &
	srv_pid=$!
	pids+=("$srv_pid")
	for i in $(seq 1 100); do
		addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$logf" | head -n 1)
		[[ -n $addr ]] && break
		kill -0 "$srv_pid" 2>/dev/null || {
			tail -n 20 "$logf" >&2
			die "hubctl serve exited"
		}
		sleep 0.1
	done
	[[ -n $addr ]] || die "hubctl serve printed no 'listening on' line within 10s"
	srv_host=$addr
	wait_v2 "http://$addr" "$srv_pid" "$logf"
}

# start_distribution NAME DATA: start the CNCF registry (filesystem storage in DATA, the
# configuration of run.sh) on a free port; sets srv_pid and srv_host.
start_distribution() {
	mkdir -p "$2"
	run_distribution "$1" "  filesystem:
    rootdirectory: $2
  redirect:
    disable: true"
}

# start_dest NAME: a fresh, empty destination registry; sets dst_pid, dst_host, dst_data.
start_dest() {
	dst_data=$work/$1-data
	rm -rf "$dst_data"
	case $DEST in
	hubctl) start_hubctl "$1" "$dst_data" ;;
	distribution) start_distribution "$1" "$dst_data" ;;
	esac
	dst_pid=$srv_pid dst_host=$srv_host
	# regctl's private config: plain HTTP to this host (it pings the registry).
	"$regctl" registry set --tls disabled "$dst_host" >/dev/null 2>&1 || true
}

stop_dest() {
	stop "$dst_pid"
	rm -rf "$dst_data"
}

# settle COLD: flush dirty pages before a timed run; before a cold one also drop the
# clean page cache (as root) and read the source registry's files back, so every tool
# reads the source from memory and the destination writes into recycled pages.
settle() {
	sync
	[[ $1 == cold ]] || return 0
	if [[ $can_drop == 1 ]]; then
		echo 1 >/proc/sys/vm/drop_caches
	fi
	find "$src_data" -type f -exec cat {} + >/dev/null
}

# measure OP TOOL ROUND CMD...: run CMD under /usr/bin/time, append a line to
# results.tsv (op, tool, round, wall seconds, peak RSS KiB, client CPU seconds, ok|fail).
# Wall time comes from date (GNU time rounds to 10 ms); RSS and CPU cover CMD and its
# children (the largest process, the sum). Returns CMD's status.
measure() {
	local op=$1 tool=$2 round=$3 t0 t1 st=0 secs rss cpu line
	shift 3
	local stem=$work/logs/$op-$tool-$round
	t0=$(date +%s%N)
	/usr/bin/time -f '%M %U %S' -o "$stem.time" "$@" >"$stem.out" 2>"$stem.err" || st=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	line=$(tail -n 1 "$stem.time" 2>/dev/null || true)
	read -r rss cpu <<<"$(awk '{ printf "%d %.2f", $1, $2 + $3 }' <<<"${line:-0 0 0}")"
	if [[ $st == 0 ]]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$op" "$tool" "$round" "$secs" "$rss" "$cpu" >>"$work/results.tsv"
		log "$(printf '%-12s %-7s round %s: %8.3f s  %7.1f MiB  %6.2f s CPU' "$op" "$tool" "$round" "$secs" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$cpu")"
	else
		printf '%s\t%s\t%s\t%s\t%s\t%s\tfail\n' "$op" "$tool" "$round" "$secs" "$rss" "$cpu" >>"$work/results.tsv"
		log "FAILED: $op $tool round $round (exit $st): $*"
		sed 's/^/    /' "$stem.err" | tail -n 15 >&2
	fi
	return "$st"
}

# mark_wrong OP TOOL ROUND: turn the last result of that measurement into a failure.
mark_wrong() {
	awk -F'\t' -v OFS='\t' -v op="$1" -v tool="$2" -v r="$3" \
		'$1 == op && $2 == tool && $3 == r { $7 = "fail" } { print }' "$work/results.tsv" >"$work/results.tmp"
	mv "$work/results.tmp" "$work/results.tsv"
	bad=1
}

# digest REF: the digest of REF's manifest, by hubctl.
digest() { "$hub" digest "$1" 2>>"$work/digest.log"; }

# check_copy OP TOOL ROUND REF: REF must have the big image's digest.
check_copy() {
	local got
	got=$(digest "$4" || true)
	if [[ $got != "$big_digest" ]]; then
		log "ERROR: $2 $1 round $3: $4 has digest '${got:-none}', the source has $big_digest"
		mark_wrong "$1" "$2" "$3"
	fi
}

# check_mirror OP TOOL ROUND PREFIX: PREFIX/repoN:tag must match the source, all of them.
check_mirror() {
	local i t got wrong=0
	for ((i = 0; i < REPOS; i++)); do
		for t in "${TAGS[@]}"; do
			got=$(digest "$4/repo$i:$t" || true)
			if [[ $got != "${small_digest[repo$i:$t]}" ]]; then
				log "ERROR: $2 $1 round $3: $4/repo$i:$t has digest '${got:-none}', the source has ${small_digest[repo$i:$t]}"
				wrong=1
			fi
		done
	done
	[[ $wrong == 0 ]] || mark_wrong "$1" "$2" "$3"
}

# copy_cmd TOOL SRC DST: the tool's one-image copy command, as words.
copy_cmd() {
	case $1 in
	hubctl) cmd=("$hub" copy "$2" "$3" --progress quiet) ;;
	crane) cmd=("$crane" copy --insecure "$2" "$3") ;;
	skopeo) cmd=("$skopeo" copy "${skopeo_policy[@]}" --src-tls-verify=false --dest-tls-verify=false --preserve-digests "docker://$2" "docker://$3") ;;
	regctl) cmd=("$regctl" image copy "$2" "$3") ;;
	esac
}

# mirror_cmd TOOL PREFIX: the tool's command that mirrors every source repository m/repoN
# (all tags) to PREFIX/repoN.
mirror_cmd() {
	local i t f
	case $1 in
	hubctl)
		f=$work/mirror-$(basename "$2").yaml
		{
			echo "mirrors:"
			for ((i = 0; i < REPOS; i++)); do
				printf '  - source: %s/m/repo%d\n    target: %s/repo%d\n' "$src_host" "$i" "$2" "$i"
			done
		} >"$f"
		cmd=("$hub" mirror -f "$f" --progress quiet)
		;;
	skopeo)
		# One command: a YAML source naming every repository (an empty tag list is all tags);
		# without --scoped the images land at PREFIX/<last path element>.
		f=$work/sync-$(basename "$2").yaml
		{
			echo "$src_host:"
			echo "  tls-verify: false"
			echo "  images:"
			for ((i = 0; i < REPOS; i++)); do
				echo "    m/repo$i: []"
			done
		} >"$f"
		cmd=("$skopeo" sync "${skopeo_policy[@]}" --src yaml --dest docker --dest-tls-verify=false --preserve-digests "$f" "$2")
		;;
	crane)
		# crane has no mirror verb: one `crane copy --all-tags` per repository.
		f=$work/crane-mirror-$(basename "$2").sh
		{
			echo "set -e"
			for ((i = 0; i < REPOS; i++)); do
				printf '%q copy --insecure --all-tags %q %q\n' "$crane" "$src_host/m/repo$i" "$2/repo$i"
			done
		} >"$f"
		cmd=(bash "$f")
		;;
	regctl)
		# regctl has no mirror verb (regsync is another program): one `regctl image copy`
		# per reference.
		f=$work/regctl-mirror-$(basename "$2").sh
		{
			echo "set -e"
			for ((i = 0; i < REPOS; i++)); do
				for t in "${TAGS[@]}"; do
					printf '%q image copy %q %q\n' "$regctl" "$src_host/m/repo$i:$t" "$2/repo$i:$t"
				done
			done
		} >"$f"
		cmd=(bash "$f")
		;;
	esac
}

command -v go >/dev/null || die "go is not installed"
command -v curl >/dev/null || die "curl is not installed"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing: it measures peak RSS; install the 'time' package"
[[ $DEST == hubctl || $DEST == distribution ]] || die "DEST: hubctl or distribution, not $DEST"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS: a positive number, not $ROUNDS"
[[ " $CLIENTS " == *" hubctl "* ]] || die "CLIENTS must include hubctl"

hub=$work/hubctl crane=$TOOLS/crane regctl=$TOOLS/regctl skopeo=$(command -v skopeo || echo /usr/bin/skopeo)
skopeo_policy=()
if [[ ! -f /etc/containers/policy.json ]]; then
	skopeo_policy=(--insecure-policy)
fi

clients=()
for c in $CLIENTS; do
	case $c in
	hubctl) ;;
	crane | regctl) [[ -x $TOOLS/$c ]] || {
		log "skipping $c: $TOOLS/$c is missing (run e2e/install-tools.sh)"
		continue
	} ;;
	skopeo) [[ -x $skopeo ]] || {
		log "skipping skopeo: not installed (apt-get install -y skopeo)"
		continue
	} ;;
	*) die "CLIENTS: unknown tool $c (hubctl crane skopeo regctl)" ;;
	esac
	clients+=("$c")
done
[[ ${#clients[@]} -ge 2 ]] || die "no peer tool to compare with"
if [[ $DEST == distribution && ! -x $TOOLS/registry ]]; then
	die "$TOOLS/registry is missing: run e2e/install-tools.sh"
fi
can_drop=0
if [[ -w /proc/sys/vm/drop_caches ]]; then
	can_drop=1
else
	log "not root: the page cache is not dropped between cold runs"
fi

log "building hubctl and clientbench"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl && go build -o "$work/clientbench" ./bench/clientbench)

# Every tool runs with a private HOME (and regctl with a private config), so the user's
# credentials and settings neither help nor change. (After the build: go keeps its caches
# under HOME.)
mkdir -p "$work/home" "$work/logs"
export HOME=$work/home DOCKER_CONFIG=$work/home/.docker REGCTL_CONFIG=$work/home/regctl.json

# Source registry and its content.
src_data=$work/src-data
start_hubctl src "$src_data"
src_pid=$srv_pid src_host=$srv_host
"$regctl" registry set --tls disabled "$src_host" >/dev/null 2>&1 || true

log "seeding $src_host: $LAYERS × $LAYER_SIZE image big/app:1"
"$work/clientbench" layout -dir "$work/layout-big" -refs 1 -layers "$LAYERS" -size "$LAYER_SIZE" -seed 1 >/dev/null
"$hub" push "oci:$work/layout-big:1" "$src_host/big/app:1" --progress quiet >/dev/null ||
	die "hubctl push oci:$work/layout-big:1 $src_host/big/app:1 failed"
rm -rf "$work/layout-big"
big_digest=$(digest "$src_host/big/app:1") || die "hubctl digest $src_host/big/app:1 failed"

log "seeding $src_host: $REPOS repositories m/repoN × ${#TAGS[@]} tags of 3 layers of $SMALL_SIZE"
declare -A small_digest
for ((i = 0; i < REPOS; i++)); do
	refs=$(printf "repo$i-%s," "${TAGS[@]}")
	"$work/clientbench" layout -dir "$work/layout-small" -refs "${refs%,}" -layers 3 -shared 1 -size "$SMALL_SIZE" -seed $((100 + i)) >/dev/null
done
for ((i = 0; i < REPOS; i++)); do
	for t in "${TAGS[@]}"; do
		"$hub" push "oci:$work/layout-small:repo$i-$t" "$src_host/m/repo$i:$t" --progress quiet >/dev/null ||
			die "hubctl push oci:$work/layout-small:repo$i-$t $src_host/m/repo$i:$t failed"
		small_digest[repo$i:$t]=$(digest "$src_host/m/repo$i:$t") || die "hubctl digest $src_host/m/repo$i:$t failed"
	done
done
rm -rf "$work/layout-small"
log "source ready: $(du -sh "$src_data" | cut -f1) in $src_data; destination: fresh $DEST per measurement"

shm=$(mktemp -d /dev/shm/hubctl-clientbench.XXXXXX)
warm_memory

for ((round = 1; round <= ROUNDS; round++)); do
	# The tool that goes first rotates round by round.
	n=${#clients[@]}
	order=()
	for ((k = 0; k < n; k++)); do order+=("${clients[$(((k + round - 1) % n))]}"); done
	log "round $round of $ROUNDS: ${order[*]}"

	for tool in "${order[@]}"; do
		start_dest "dst-copy-$tool-$round"
		ref=$dst_host/copy/$tool-r$round/app:1
		copy_cmd "$tool" "$src_host/big/app:1" "$ref"
		settle cold
		if measure copy-cold "$tool" "$round" "${cmd[@]}"; then
			check_copy copy-cold "$tool" "$round" "$ref"
			settle warm
			measure copy-warm "$tool" "$round" "${cmd[@]}" && check_copy copy-warm "$tool" "$round" "$ref"
		fi
		stop_dest
	done

	for tool in "${order[@]}"; do
		start_dest "dst-mirror-$tool-$round"
		prefix=$dst_host/mirror/$tool-r$round
		mirror_cmd "$tool" "$prefix"
		settle cold
		if measure mirror-cold "$tool" "$round" "${cmd[@]}"; then
			check_mirror mirror-cold "$tool" "$round" "$prefix"
			settle warm
			measure mirror-warm "$tool" "$round" "${cmd[@]}" && check_mirror mirror-warm "$tool" "$round" "$prefix"
		fi
		stop_dest
	done
done
stop "$src_pid"

gib=$(awk -v l="$LAYERS" -v s="$(numfmt --from=iec "${LAYER_SIZE%iB}")" 'BEGIN { printf "%.3g", l * s / 2^30 }')
log "medians of $ROUNDS round(s); destination $DEST; peak RSS is the largest of the rounds;" \
	"crane mirrors with one 'crane copy --all-tags' per repository, regctl with one 'regctl image copy' per reference"
st=0
"$work/clientbench" report -copy-label "$gib GiB ($LAYERS × $LAYER_SIZE)" \
	-mirror-label "$REPOS repos × ${#TAGS[@]} tags" "$work/results.tsv" || st=$?
[[ $st == 0 || $st == 3 ]] || die "clientbench report failed (exit $st)"
if [[ $bad != 0 ]]; then
	die "a tool produced a wrong digest (see ERROR above)"
fi
exit "$st"
