# fastgate — `make help` lists the targets.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: help build run test test-race bench-micro fmt vet clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/fastgate, bin/upstream
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/fastgate ./cmd/fastgate
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/upstream ./cmd/upstream

run: build ## run the gateway with the embedded demo config and demo services on 127.0.0.1:8080
	$(BIN)/fastgate -demo

test: vet ## vet, then every test (unit, allocation, integration with the real binaries), then the race detector on the engine
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race -short ./core/... ./lb/...

bench-micro: ## Go benchmarks beside the code (-benchmem, RunParallel)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./core/... ./lb/...

fmt: ## gofmt every Go file
	gofmt -w cmd core lb examples

vet: ## go vet and a gofmt check
	@unformatted=$$(gofmt -l cmd core lb examples); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

clean: ## remove build output
	rm -rf $(BIN)
