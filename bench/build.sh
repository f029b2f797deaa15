#!/usr/bin/env bash
# Benchmark `hubctl build` against `docker build` + `docker push` (the engine's classic
# builder) and, for the Go app, `ko build`, all pushing to one `hubctl serve` on
# loopback. Three apps, each built cold, after a one-file change, and again unchanged
# (no-op). Prints a Markdown table of wall and CPU (user+sys) seconds, and each hubctl
# time as a ratio of docker's. See bench/README.md ("hubctl build").
#
# Environment (defaults are the full run):
#   JAVA_DEPS_MIB=200 JAVA_RES_MIB=50 JAVA_CLASSES_KIB=1024   the jib-like Java app
#   NODE_FILES=20000                                           files in node_modules (2 KiB each)
#   APPS="java node go"                                        which apps to run
#   HUBCTL_TOOLS=~/.cache/hubctl/bin                           where ko is (go install
#                                                              github.com/google/ko@v0.19.1)
# Quick run: JAVA_DEPS_MIB=20 JAVA_RES_MIB=5 NODE_FILES=2000 bench/build.sh
#
# Exit status: 0 all targets met, 3 a target missed, anything else an error.
set -euo pipefail

JAVA_DEPS_MIB=${JAVA_DEPS_MIB:-200}
JAVA_RES_MIB=${JAVA_RES_MIB:-50}
JAVA_CLASSES_KIB=${JAVA_CLASSES_KIB:-1024}
NODE_FILES=${NODE_FILES:-20000}
APPS=${APPS:-java node go}
TOOLS=${HUBCTL_TOOLS:-$HOME/.cache/hubctl/bin}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubctl-buildbench.XXXXXX")
pids=()
images=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${#images[@]} -gt 0 ]]; then
		docker rmi -f "${images[@]}" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
BENCH_NAME=build
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

command -v docker >/dev/null || die "docker is needed"
docker info >/dev/null 2>&1 || die "no Docker engine answers"

log "building hubctl"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hubctl" ./cmd/hubctl)
hubctl=$work/hubctl

port=$(free_port)
"$hubctl" serve --auth=none --addr "127.0.0.1:$port" --data "$work/data" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_v2 "http://127.0.0.1:$port" "${pids[-1]}" "$work/serve.log"
reg=127.0.0.1:$port

results=$work/results.tsv
: >"$results"

# measure APP TOOL PHASE CMD…: run CMD, record wall, user and sys seconds.
measure() {
	local app=$1 tool=$2 phase=$3
	shift 3
	local tf=$work/time.$$
	# Through bash, so CMD may be a function (docker_build_push); every tool pays alike.
	if ! /usr/bin/time -f '%e %U %S' -o "$tf" bash -c '"$@"' bash "$@" >"$work/last.out" 2>"$work/last.err"; then
		cat "$work/last.err" >&2
		die "$app/$tool/$phase failed: $*"
	fi
	read -r wall user sys <"$tf"
	printf '%s\t%s\t%s\t%s\t%s\n' "$app" "$tool" "$phase" "$wall" "$(echo "$user + $sys" | bc)" >>"$results"
	log "$app $tool $phase: ${wall}s wall"
}

# docker_build_push DIR REF [FLAGS]: what a docker user runs (classic builder, as on
# this engine); FLAGS is --no-cache for a cold build. The engine is shared: its build
# cache is never pruned, only bypassed.
docker_build_push() {
	DOCKER_BUILDKIT=0 docker build -q ${3:-} -t "$2" "$1" >/dev/null && docker push -q "$2" >/dev/null
}
export -f docker_build_push

# random_file FILE KIB: incompressible content (jars and binaries are compressed already).
random_file() { head -c "$(($2 * 1024))" /dev/urandom >"$1"; }
# text_file FILE KIB: compressible content (resources, sources).
text_file() { head -c "$(($2 * 768))" /dev/urandom | base64 -w 100 >"$1"; }

bench_java() {
	local d=$work/java n
	mkdir -p "$d/lib" "$d/resources/static" "$d/classes/com/example"
	log "java: ${JAVA_DEPS_MIB} MiB of jars, ${JAVA_RES_MIB} MiB of resources, ${JAVA_CLASSES_KIB} KiB of classes"
	for n in $(seq 1 $((JAVA_DEPS_MIB / 2))); do random_file "$d/lib/dep$n-1.0.jar" 2048; done
	for n in $(seq 1 $((JAVA_RES_MIB * 10))); do text_file "$d/resources/static/r$n.txt" 102; done
	for n in $(seq 1 $((JAVA_CLASSES_KIB / 4))); do random_file "$d/classes/com/example/C$n.class" 4; done
	cat >"$d/Dockerfile" <<'EOF'
FROM scratch
COPY lib/ /app/lib/
COPY resources/ /app/resources/
COPY classes/ /app/classes/
ENTRYPOINT ["java", "-cp", "/app/classes:/app/lib/*", "com.example.App"]
EOF
	printf 'Dockerfile\nhubctl.yaml\n' >"$d/.dockerignore"
	cat >"$d/hubctl.yaml" <<'EOF'
preset: java
entrypoint: [java, -cp, "/app/classes:/app/lib/*", com.example.App]
EOF
	compare java "$d" "$d/classes/com/example/C1.class"
}

bench_node() {
	local d=$work/node n
	log "node: $NODE_FILES files in node_modules"
	# Ten 2 KiB bodies made once, written with the shell's own printf: forking two
	# processes per file would take minutes for 20,000 files.
	local pool=() f
	for f in 0 1 2 3 4 5 6 7 8 9; do pool+=("$(head -c 1536 /dev/urandom | base64 -w 100)"); done
	for n in $(seq 1 $((NODE_FILES / 10))); do
		mkdir -p "$d/node_modules/pkg$n/lib"
		for f in 0 1 2 3 4 5 6 7 8 9; do printf '%s\n// %s\n' "${pool[f]}" "$n" >"$d/node_modules/pkg$n/lib/f$f.js"; done
	done
	mkdir -p "$d/src"
	for n in $(seq 1 50); do text_file "$d/src/m$n.js" 4; done
	echo '{"name":"app","version":"1.0.0"}' >"$d/package.json"
	cat >"$d/Dockerfile" <<'EOF'
FROM scratch
COPY node_modules/ /app/node_modules/
COPY package.json /app/
COPY src/ /app/src/
CMD ["node", "/app/src/m1.js"]
EOF
	printf 'Dockerfile\nhubctl.yaml\n' >"$d/.dockerignore"
	printf 'preset: node\ncmd: [node, /app/src/m1.js]\n' >"$d/hubctl.yaml"
	compare node "$d" "$d/src/m1.js"
}

# compare APP DIR CHANGED: docker, then hubctl, cold / one-file change / no-op.
compare() {
	local app=$1 d=$2 changed=$3 cache=$work/cache-$1
	local dref=$reg/bench/$app-docker:1 href=$reg/bench/$app-hubctl:1
	images+=("$dref")
	measure "$app" docker cold docker_build_push "$d" "$dref" --no-cache
	echo "// changed $(date +%s%N)" >>"$changed"
	measure "$app" docker change docker_build_push "$d" "$dref"
	measure "$app" docker noop docker_build_push "$d" "$dref"
	rm -rf "$cache"
	measure "$app" hubctl cold "$hubctl" build --progress quiet --cache-dir "$cache" --spec "$d/hubctl.yaml" -t "$href" "$d"
	echo "// changed $(date +%s%N)" >>"$changed"
	measure "$app" hubctl change "$hubctl" build --progress quiet --cache-dir "$cache" --spec "$d/hubctl.yaml" -t "$href" "$d"
	measure "$app" hubctl noop "$hubctl" build --progress quiet --cache-dir "$cache" --spec "$d/hubctl.yaml" -t "$href" "$d"
}

bench_go() {
	local d=$work/go cache=$work/cache-go
	mkdir -p "$d/kodata"
	text_file "$d/kodata/index.html" 64
	cat >"$d/go.mod" <<'EOF'
module example.com/svc

go 1.22
EOF
	cat >"$d/main.go" <<'EOF'
package main

import (
	"fmt"
	"net/http"
	"os"
)

var version = "1"

func main() {
	http.Handle("/", http.FileServer(http.Dir(os.Getenv("KO_DATA_PATH"))))
	fmt.Println("svc", version)
	_ = http.ListenAndServe(":8080", nil)
}
EOF
	cat >"$d/Dockerfile" <<'EOF'
FROM scratch
COPY kodata/ /var/run/ko/
COPY svc /ko-app/svc
ENV KO_DATA_PATH=/var/run/ko
ENTRYPOINT ["/ko-app/svc"]
EOF
	printf 'main.go\ngo.mod\nhubctl.yaml\nDockerfile\n' >"$d/.dockerignore"
	printf 'preset: go\nentrypoint: [/ko-app/svc]\nexclude: [main.go, go.mod, Dockerfile]\n' >"$d/hubctl.yaml"
	local gobuild="cd $d && CGO_ENABLED=0 GOFLAGS=-trimpath go build -o svc ."
	local dref=$reg/bench/go-docker:1 href=$reg/bench/go-hubctl:1
	images+=("$dref")
	(cd "$d" && go build -o /dev/null .) # warm the Go build cache for every tool alike
	measure go docker cold bash -c "$gobuild && DOCKER_BUILDKIT=0 docker build -q --no-cache -t $dref . >/dev/null && docker push -q $dref >/dev/null"
	sed -i "s/var version = \".*\"/var version = \"$RANDOM$RANDOM\"/" "$d/main.go"
	measure go docker change bash -c "$gobuild && DOCKER_BUILDKIT=0 docker build -q -t $dref . >/dev/null && docker push -q $dref >/dev/null"
	measure go docker noop bash -c "$gobuild && DOCKER_BUILDKIT=0 docker build -q -t $dref . >/dev/null && docker push -q $dref >/dev/null"
	rm -rf "$cache"
	measure go hubctl cold bash -c "$gobuild && $hubctl build --progress quiet --cache-dir $cache --spec hubctl.yaml -t $href ."
	sed -i "s/var version = \".*\"/var version = \"$RANDOM$RANDOM\"/" "$d/main.go"
	measure go hubctl change bash -c "$gobuild && $hubctl build --progress quiet --cache-dir $cache --spec hubctl.yaml -t $href ."
	measure go hubctl noop bash -c "$gobuild && $hubctl build --progress quiet --cache-dir $cache --spec hubctl.yaml -t $href ."
	local ko=$TOOLS/ko
	if [[ ! -x $ko ]]; then
		ko=$(command -v ko || true)
	fi
	if [[ -z $ko ]]; then
		log "ko not found in $TOOLS or PATH: skipping it (go install github.com/google/ko@v0.19.1)"
		return
	fi
	# ko needs a base image; it cannot reach the internet here, so give it a tiny one.
	mkdir -p "$work/kobase"
	echo base >"$work/kobase/base.txt"
	printf 'FROM scratch\nCOPY base.txt /\n' >"$work/kobase/Dockerfile"
	"$hubctl" build --progress quiet --cache-dir "$work/cache-kobase" -t "$reg/bench/kobase:1" "$work/kobase" >/dev/null
	local koenv="cd $d && KO_DOCKER_REPO=$reg/bench/go-ko KO_DEFAULTBASEIMAGE=$reg/bench/kobase:1 KOCACHE=$work/kocache"
	measure go ko cold bash -c "$koenv $ko build --bare --sbom=none --platform=linux/amd64 . >/dev/null"
	sed -i "s/var version = \".*\"/var version = \"$RANDOM$RANDOM\"/" "$d/main.go"
	measure go ko change bash -c "$koenv $ko build --bare --sbom=none --platform=linux/amd64 . >/dev/null"
	measure go ko noop bash -c "$koenv $ko build --bare --sbom=none --platform=linux/amd64 . >/dev/null"
}

for app in $APPS; do
	"bench_$app"
done

# The table, and the issue's targets: cold ≤ 0.5× docker; one-file change ≤ 0.1× docker
# and under 1 s; no-op under 0.5 s.
status=0
printf '| app | tool | phase | wall s | CPU s | wall vs docker |\n|---|---|---|---:|---:|---:|\n'
while IFS=$'\t' read -r app tool phase wall cpu; do
	ratio=""
	if [[ $tool != docker ]]; then
		dw=$(awk -F'\t' -v a="$app" -v p="$phase" '$1==a && $2=="docker" && $3==p {print $4}' "$results")
		ratio=$(echo "scale=2; $wall / $dw" | bc)x
		if [[ $tool == hubctl ]]; then
			case $phase in
			cold) (($(echo "$wall > 0.5 * $dw" | bc))) && status=3 && ratio+=" (target ≤0.5x)" ;;
			change) (($(echo "$wall > 0.1 * $dw || $wall >= 1" | bc))) && [[ $app != go ]] && status=3 && ratio+=" (target ≤0.1x, <1s)" ;;
			noop) (($(echo "$wall >= 0.5" | bc))) && [[ $app != go ]] && status=3 && ratio+=" (target <0.5s)" ;;
			esac
		fi
	fi
	printf '| %s | %s | %s | %s | %s | %s |\n' "$app" "$tool" "$phase" "$wall" "$cpu" "$ratio"
done <"$results"
log "Go rows include 'go build' on the host for docker and hubctl (ko compiles itself)"
exit $status
