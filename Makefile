# Release builds use goreleaser (.goreleaser.yaml); these targets are for development.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.PHONY: all generate build test test-tools
all: generate build test

# Regenerates completions/, docs/cli and docs/man from the command tree.
generate:
	go generate ./...

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o hubctl ./cmd/hubctl

# test-tools installs the pinned third-party tools the e2e tests drive (conformance suite,
# crane, oras into $$HOME/.cache/hubctl/bin; skopeo via apt as root). Cached: a warm run is
# instant.
test-tools:
	./e2e/install-tools.sh

# test runs every test, e2e included. -count=1 because e2e results depend on the hubctl
# binary the tests build and on external tools, which go test's cache cannot see.
test: test-tools
	go test -count=1 -timeout 45m ./...
