# surge: `make run` starts the platform on the embedded defaults,
# `make test` runs every test (Vitess included; it sets up what it needs).

GO      ?= go
BIN     := $(CURDIR)/bin
SURGE   := $(BIN)/surge
NATSCLI := $(BIN)/nats
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build run test test-short chaos bench lint tools clean

all: build

## build: build bin/surge
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(SURGE) ./cmd/surge

## run: build and run `surge up` with every manifest under manifests/ deployed
run: build
	$(SURGE) up --manifests manifests

## tools: build the stock nats CLI (natscli, pinned in tools/go.mod) into bin/nats
tools: $(NATSCLI)
$(NATSCLI): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(NATSCLI) github.com/nats-io/natscli/nats

## test: installs chromium and prometheus if missing (scripts/test-deps.sh), vet, then every test, Vitess integration included (scripts/test.sh starts and stops a 2-shard vttestserver)
test: tools
	scripts/test-deps.sh
	$(GO) vet ./...
	scripts/check-large-files.sh
	SURGE_NATS_CLI=$(NATSCLI) scripts/test.sh

## test-short: every test except the ones that need Vitess
test-short: tools
	SURGE_NATS_CLI=$(NATSCLI) $(GO) test -count=1 ./...

## chaos: the kill drill, three rounds: a 3-node NATS cluster, a 2-shard Vitess, 2 gateways and 3 runtime hosts under load; SIGKILLs the ORDERS leader, a runtime host mid-batch and a gateway, then checks every acked write is stored once (make test runs one round)
chaos:
	SURGE_CHAOS_ROUNDS=$${SURGE_CHAOS_ROUNDS:-3} SURGE_TEST_PKGS=./internal/clustertest scripts/test.sh -run '^TestChaos$$' -v

## bench: the benchmark suite (scripts/bench.sh builds bin/surge, then writes BENCHMARKS.md)
bench:
	scripts/bench.sh

## lint: gofmt, go vet, and no tracked file over 1 MiB that is not source or docs (binaries, dumps)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) build -tags novitess -o /dev/null ./cmd/surge
	@scripts/check-large-files.sh

clean:
	rm -rf $(BIN)

help:
	@grep -E '^## ' Makefile | sed 's/^## //'
