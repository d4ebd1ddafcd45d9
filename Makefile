# The one place that knows the project's commands.
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Static, reproducible, stripped binaries.
GOBUILD      = CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: all build test lint bench clean

all: lint test build

## build: the supervisor for this machine, into bin/
build:
	$(GOBUILD) -o bin/supervisor ./supervisor

## test: every test, integration ones included (they skip loudly where a tool is missing)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## lint: formatting, vet, staticcheck and a tidy go.mod
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

## bench: the README's performance table (needs hyperfine)
bench: build
	$(GO) build -o bin/empty ./bench/empty
	$(GO) run ./bench

clean:
	rm -rf bin
