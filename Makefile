# callpub — developer targets. `make test` is the whole suite; CI runs it with
# CALLPUB_TEST_KAFKA=real (see .ci/run).

GO          ?= go
GOTESTFLAGS ?=
BENCH       ?= .
BENCHTIME   ?= 1s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all test bench lint vet demo kafka-jars build fuzz

all: lint test

# vet, then one real Kafka broker (jars fetched with Maven into a cache on first
# use) shared by every package through CALLPUB_TEST_KAFKA_BROKERS, then the race-
# enabled test suite. The broker is stopped and its data deleted on any exit.
test: vet
	scripts/kafka/with-broker.sh $(GO) test -race -count=1 -timeout 30m $(GOTESTFLAGS) ./...
	cd deploy/validate && $(GO) vet ./... && $(GO) test -count=1 ./...

# Benchmarks print their numbers (events/s, calls/s, records/s); nothing asserts on time.
bench:
	scripts/kafka/with-broker.sh $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem $(GOTESTFLAGS) ./...

vet:
	$(GO) vet ./...

# go vet plus staticcheck, fetched from the Go module proxy.
lint: vet
	$(GO) run $(STATICCHECK) ./...

demo:
	$(GO) run ./cmd/callpub demo

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/ ./cmd/...

# Fill the Kafka jar cache ahead of time (a CI cache step, or before going offline).
kafka-jars:
	scripts/kafka/fetch.sh
