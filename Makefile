# fastgate — `make help` lists the targets.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

SCENARIO ?= smoke
LOADGEN_FLAGS ?=
BENCH_FLAGS ?=
SRC_DIRS := cmd core lb limiter loadtest bench examples

.PHONY: help build run test deps loadgen loadtest bench bench-micro pgo fmt vet clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/fastgate, bin/upstream, bin/loadgen
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/fastgate ./cmd/fastgate
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/upstream ./cmd/upstream
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/loadgen ./cmd/loadgen

run: build ## run the gateway with the embedded demo config and demo services on 127.0.0.1:8080
	$(BIN)/fastgate -demo

test: deps vet ## install test servers if missing (as root), vet, every test (unit, allocation, integration with real binaries and servers), then the race detector
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race -short ./core/... ./lb/... ./limiter/...

.PHONY: test-long
test-long: deps ## wall-clock runs kept out of make test (-tags long): rate-limit and load-generator accuracy, policy latency figures (-v prints them), 5 GiB streaming
	$(GO) vet -tags long $(PKGS)
	$(GO) test -count=1 -tags long -v -run 'Accuracy|LatencyFigures|StreamingBoundedRSS' $(PKGS)

deps: ## install redis-server, nginx, haproxy, etcd, chromium, wrk, node when missing (apt-get, as root)
	@bash .ci/deps

loadtest: build ## run SCENARIO=smoke|load|stress|spike|soak|reload-under-load|upstream-failure against a fresh upstream + gateway; exit 1 if a threshold fails
	$(BIN)/loadgen -stack -bin $(BIN) -scenario loadtest/scenarios/$(SCENARIO).json $(LOADGEN_FLAGS)

bench: build ## fastgate vs nginx vs HAProxy on loopback (~10 min; BENCH_TIME=3s per run, BENCH_REPEAT=3); writes bench/results/
	$(GO) run ./bench -bin $(BIN) $(BENCH_FLAGS)

pgo: build ## regenerate cmd/fastgate/default.pgo, the CPU profile of fastgate under make bench's workloads that go build optimizes it with (~2 min)
	$(GO) run ./bench -bin $(BIN) -pgo cmd/fastgate/default.pgo -time 10s

bench-micro: ## Go benchmarks beside the code (-benchmem, RunParallel)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./core/... ./lb/... ./limiter/...

fmt: ## gofmt every Go file
	gofmt -w $(SRC_DIRS)

vet: ## go vet and a gofmt check
	@unformatted=$$(gofmt -l $(SRC_DIRS)); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

clean: ## remove build output
	rm -rf $(BIN)
