#!/usr/bin/env bash
# Installs the third-party tools the e2e tests drive (OCI conformance suite, crane, oras,
# skopeo) into $HOME/.cache/hubctl/bin. Idempotent: a tool whose binary is already there
# is skipped, so a warm run takes well under a second.
set -euo pipefail

BIN="${HUBCTL_TOOLS_BIN:-$HOME/.cache/hubctl/bin}"
mkdir -p "$BIN"

# name|module@version: versions are pinned so CI runs are reproducible (see FACTS.md).
TOOLS=(
  "conformance|github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
  "crane|github.com/google/go-containerregistry/cmd/crane@v0.22.1"
  "oras|oras.land/oras/cmd/oras@v1.3.6"
)

for entry in "${TOOLS[@]}"; do
  name="${entry%%|*}"
  mod="${entry#*|}"
  if [ -x "$BIN/$name" ]; then
    continue
  fi
  echo "install-tools: go install $mod" >&2
  # Run from / so no go.work or GOFLAGS of the project applies to the tool build.
  (cd / && GOBIN="$BIN" go install "$mod")
done

if ! command -v skopeo >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-tools: apt-get install skopeo" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq skopeo >/dev/null
  else
    echo "install-tools: skopeo missing and not root; install it with 'apt-get install -y skopeo'" >&2
  fi
fi
