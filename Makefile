# Everyday commands. Only Go is needed for run, test and bench; test-backends
# installs and starts PostgreSQL and an S3 server (as CI does).

GO ?= go
BIN := bin/imaged

.PHONY: run build test test-race test-backends bench vet fmt clean

run:           ## run the service on the embedded default (./data)
	$(GO) run ./cmd/imaged serve

build:         ## build a static binary into bin/ (pure Go and WASM renders; the Dockerfile builds the faster one)
	CGO_ENABLED=0 $(GO) build -tags nodynamic -trimpath -ldflags "-s -w -X main.commitID=$$(git rev-parse HEAD 2>/dev/null)" -o $(BIN) ./cmd/imaged

test:          ## unit, conformance and end-to-end tests (backends that are not configured are skipped)
	$(GO) test ./...

test-race:
	$(GO) test -race ./...

test-backends: ## the CI run: real PostgreSQL and S3 server, nothing skipped
	bash .ci/run

bench:         ## throughput, latency and memory figures against a bare net/http baseline
	$(GO) run ./bench

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l .)"

clean:
	rm -rf bin tmp
