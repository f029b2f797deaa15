#!/usr/bin/env bash
# Installs the third-party tools the tests drive (OCI conformance suite, crane, oras,
# helm 3 and helm 4, the versitygw S3 server, the distribution registry, regctl, pebble,
# skopeo, tmux) into $HOME/.cache/hubctl/bin. Idempotent: a tool whose binary is there at the
# pinned version (recorded in $BIN/.versions/NAME) is skipped, so a warm run takes well
# under a second; changing a pin reinstalls that tool. A cold run builds them in
# parallel (about 8 minutes on 2 cores).
set -euo pipefail

BIN="${HUBCTL_TOOLS_BIN:-$HOME/.cache/hubctl/bin}"
mkdir -p "$BIN"

# name|module@version: versions are pinned so CI runs are reproducible (see FACTS.md).
TOOLS=(
  "conformance|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
  "crane|github.com/google/go-containerregistry/cmd/crane@v0.22.1"
  "oras|oras.land/oras/cmd/oras@v1.3.6"
  # helm is the slowest build here (about 4 minutes cold); its OCI client is another
  # implementation of token auth that the auth e2e tests hold the server to. helm 3 is
  # what most users run (v3.21.4: v3.22.0 is served but not an approved release); helm
  # 4 is the maintained line, installed as helm4. The chart e2e tests drive both.
  "helm|helm.sh/helm/v3/cmd/helm@v3.21.4"
  "helm4|helm.sh/helm/v4/cmd/helm@v4.3.2"
  # A real S3 server on loopback for the object-storage blob store (FACTS.md).
  "versitygw|github.com/versity/versitygw/cmd/versitygw@v1.8.0"
  # The CNCF distribution registry: the client e2e tests copy to and from it, and the
  # benchmarks compare against it (about 4 minutes cold).
  "registry|github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
  # regctl: a peer in the client benchmarks.
  "regctl|github.com/regclient/regclient/cmd/regctl@v0.11.7"
  # pebble, a real ACME server, and its DNS companion (which answers 127.0.0.1 for the
  # dotted test name autocert needs): serve --tls=acme is tested against them.
  "pebble|github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"
  "pebble-challtestsrv|github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.3"
)

mkdir -p "$BIN/.versions"
pids=()
for entry in "${TOOLS[@]}"; do
  name="${entry%%|*}"
  mod="${entry#*|}"
  if [ -x "$BIN/$name" ]; then
    stamp="$(cat "$BIN/.versions/$name" 2>/dev/null || true)"
    # A binary without a stamp came from an older run of this script, which pinned
    # the same versions as today for every tool but helm.
    if [ "$stamp" = "$mod" ] || { [ -z "$stamp" ] && [ "$name" != helm ]; }; then
      continue
    fi
  fi
  echo "install-tools: go install $mod (as $name)" >&2
  # Run from / so no go.work or GOFLAGS of the project applies to the tool build. Each
  # tool builds into a directory of its own and is then renamed, so two tools whose
  # commands share a name (helm 3 and helm 4) do not overwrite each other.
  (
    tmp="$(mktemp -d "$BIN/.install-$name.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    cd / && GOBIN="$tmp" go install "$mod"
    mv -f "$tmp/$(basename "${mod%@*}")" "$BIN/$name"
    echo "$mod" >"$BIN/.versions/$name"
  ) &
  pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" != 0 ]; then
  echo "install-tools: a tool failed to install (see above)" >&2
  exit 1
fi

# A Kubernetes control plane for the workflow executor's and deploy's tests
# (internal/kubetest; FACTS.md "Kubernetes"): etcd, kube-apiserver, kube-controller-manager
# and kube-scheduler built from the Go module proxy, and kwok as the kubelet with its
# stages joined into one config file. `go install …@v1.37.2` refuses kubernetes (replace
# directives), so the three are built in a module of their own: e2e/k8s/control-plane.go.mod
# (requires k8s.io/kubernetes v1.37.2, every staging module replaced by v0.37.2). Cold,
# the three take about 7–8 minutes on 2 quiet cores (FACTS.md; etcd about 30 s, kwok about
# 80 s, in parallel). Measured 2026-12-07 on 2 cores shared with five other builds (load
# average 60–80): etcd and kwok about an hour, the three kube binaries over 90 minutes.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.7
KWOK_VERSION=v0.8.0
HERE="$(cd "$(dirname "$0")" && pwd)"
stamp_is() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.versions/$1" 2>/dev/null || true)" = "$2" ]; }
kpids=()
if ! { stamp_is kube-apiserver "$KUBE_VERSION" && stamp_is kube-controller-manager "$KUBE_VERSION" && stamp_is kube-scheduler "$KUBE_VERSION"; }; then
  echo "install-tools: go build kube-apiserver, kube-controller-manager, kube-scheduler $KUBE_VERSION" >&2
  (
    tmp="$(mktemp -d "$BIN/.install-kube.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    cp "$HERE/k8s/control-plane.go.mod" "$tmp/go.mod"
    cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go build -o "$tmp/out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
    for b in kube-apiserver kube-controller-manager kube-scheduler; do
      mv -f "$tmp/out/$b" "$BIN/$b"
      echo "$KUBE_VERSION" >"$BIN/.versions/$b"
    done
  ) &
  kpids+=("$!")
fi
if ! stamp_is etcd "$ETCD_VERSION"; then
  echo "install-tools: go build etcd $ETCD_VERSION" >&2
  (
    tmp="$(mktemp -d "$BIN/.install-etcd.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    printf 'module etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$tmp/go.mod"
    cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go build -o "$tmp/etcd" go.etcd.io/etcd/server/v3
    mv -f "$tmp/etcd" "$BIN/etcd"
    echo "$ETCD_VERSION" >"$BIN/.versions/etcd"
  ) &
  kpids+=("$!")
fi
if ! { stamp_is kwok "$KWOK_VERSION" && [ -s "$BIN/kwok-stages.yaml" ]; }; then
  echo "install-tools: go install kwok $KWOK_VERSION" >&2
  (
    tmp="$(mktemp -d "$BIN/.install-kwok.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    cd / && GOBIN="$tmp" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    # The stages that make a fake node Ready fast and take pods (and Job pods) through
    # their lifecycle: node/fast and pod/general of the kwok module, one YAML stream.
    dir="$(cd / && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    for f in "$dir"/kustomize/stage/node/fast/*.yaml "$dir"/kustomize/stage/pod/general/*.yaml; do
      case "$(basename "$f")" in kustomization.yaml) continue ;; esac
      echo "---"
      cat "$f"
    done >"$tmp/kwok-stages.yaml"
    mv -f "$tmp/kwok-stages.yaml" "$BIN/kwok-stages.yaml"
    mv -f "$tmp/kwok" "$BIN/kwok"
    echo "$KWOK_VERSION" >"$BIN/.versions/kwok"
  ) &
  kpids+=("$!")
fi
for pid in "${kpids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" != 0 ]; then
  echo "install-tools: the Kubernetes control plane failed to install (see above)" >&2
  exit 1
fi

# Debian packages: skopeo (a client under test), busybox-static, tmux (the progress view is driven in a
# real terminal) and the PostgreSQL server binaries (the metadata store's tests start a
# throwaway cluster of their own; nothing runs here).
apt_need=()
command -v skopeo >/dev/null 2>&1 || apt_need+=(skopeo)
command -v tmux >/dev/null 2>&1 || apt_need+=(tmux)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_need+=(postgresql)
# A static busybox: the workflow executors' tests build their step image FROM scratch
# with it (a dynamic /bin/busybox cannot run there).
dpkg -s busybox-static >/dev/null 2>&1 || apt_need+=(busybox-static)
# sshd: the deploy tests reach the Docker engine over SSH through one they start on
# loopback (ssh://user@127.0.0.1:port, as DOCKER_HOST=ssh:// does).
[ -x /usr/sbin/sshd ] || apt_need+=(openssh-server)
if [ "${#apt_need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-tools: apt-get install ${apt_need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${apt_need[@]}" >/dev/null
  else
    echo "install-tools: ${apt_need[*]} missing and not root; install with 'apt-get install -y ${apt_need[*]}'" >&2
  fi
fi
