# elevate — see README.md. Targets work on a fresh machine with Go installed.
GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1x

.PHONY: run test build vet fmt-check bench fuzz clean

## run: the whole product on this machine: temporary SQLite, the example policies, the in-memory cloud emulator, a printed dev token
run:
	$(GO) run ./cmd/elevate dev

## test: the whole test suite (PostgreSQL tests run when ELEVATE_TEST_POSTGRES holds a DSN)
test:
	@if [ -z "$$ELEVATE_TEST_POSTGRES" ]; then echo "NOTE: ELEVATE_TEST_POSTGRES is not set: PostgreSQL store tests will be SKIPPED (.ci/run sets it)"; fi
	$(GO) test -count=1 -timeout 9m $(PKGS)

build:
	$(GO) build -o bin/elevate ./cmd/elevate

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: the named benchmarks with the figures the issues ask for
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m $(PKGS)

## fuzz: fuzz the policy loader (FUZZTIME=5m by default)
FUZZTIME ?= 5m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./policies

clean:
	rm -rf bin
