# The one place that knows the project's commands.
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Where the version and commit are stamped (package internal/buildinfo).
STAMP        = -X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Version=$(VERSION) -X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Commit=$(COMMIT)
# Every tool, pinned here and nowhere else; `make tools` installs them.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
ACTIONLINT  ?= github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
GORELEASER  ?= github.com/goreleaser/goreleaser/v2@v2.15.1
CYCLONEDX   ?= github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
# The Lambda Runtime Interface Emulator the integration tests run bootstraps under.
RIE         ?= github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
# Static, reproducible, stripped binaries.
GOBUILD      = CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(STAMP)"
# Lambda bootstraps for provided.al2023 on arm64 (Graviton).
LAMBDA_ARCH ?= arm64
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build -trimpath -tags lambda.norpc -ldflags "-s -w $(STAMP)"
ARTIFACTS_DIR ?= bin/lambda

.PHONY: all build test test-tools test-short lint bench clean tools iam-simulator image-test release-check demo acceptance build-TerminateFunction build-SweepFunction build-TaskRolesFunction build-LedgerFunction

all: lint test build

## demo: the whole flow on this machine, no AWS account: a bastion stops itself at its TTL
demo:
	$(GO) run ./demo

## build: the supervisor for this machine, into bin/
build:
	$(GOBUILD) -o bin/supervisor ./supervisor

## build-<Function>: what `sam build` calls (BuildMethod: makefile) with ARTIFACTS_DIR;
## one line per function of template.yaml: build-<LogicalId>: ; $(call lambda,<dir under lambda/>)
build-TerminateFunction:
	$(call lambda,terminate)
build-SweepFunction:
	$(call lambda,sweep)
build-TaskRolesFunction:
	$(call lambda,taskroles)
build-LedgerFunction:
	$(call lambda,ledger)

define lambda
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./lambda/$(1)
endef

## tools: install the pinned tools (into $(shell $(GO) env GOPATH)/bin): the Lambda emulator, the linters, GoReleaser and its SBOM generator
tools:
	$(GO) install $(RIE)
	$(GO) install $(STATICCHECK)
	$(GO) install $(ACTIONLINT)
	$(GO) install $(GORELEASER)
	$(GO) install $(CYCLONEDX)

## test-tools: what make test runs with, pinned: the Lambda emulator (go install; quick when
## installed) and the IAM simulator (npm ci, again only when its package-lock.json changes).
## Without npm it says so and goes on: the IAM tests then skip, and fail under BASTION_TEST_STRICT=1.
# The IAM simulator's node project, beside its driver (package internal/testenv/iamsim).
SIMULATOR_DIR = internal/testenv/iamsim/testdata/iam-simulate
SIMULATOR = $(SIMULATOR_DIR)/node_modules/.package-lock.json
test-tools: $(SIMULATOR)
	$(GO) install $(RIE)

$(SIMULATOR): $(SIMULATOR_DIR)/package-lock.json
	@if command -v npm >/dev/null; then $(MAKE) iam-simulator; \
	else echo "make test: npm not found: install node and npm (the IAM tests need the simulator), or they skip" >&2; fi

## iam-simulator: install the IAM policy simulator the template's tests decide the policies with (npm ci into
## internal/testenv/iamsim/testdata/iam-simulate, pinned by its package-lock.json; AGPL-3.0, a test tool only, in no artifact)
iam-simulator:
	npm ci --prefix $(SIMULATOR_DIR) --no-audit --no-fund

## test: every test, integration ones included. It first installs the pinned Lambda emulator and IAM
## simulator it needs (test-tools); a tool still missing makes its tests skip, and a summary at the end names them
test: test-tools
	$(GO) vet ./...
	@rm -f bin/skipped.txt; mkdir -p bin
	BASTION_TEST_SKIPS=$(CURDIR)/bin/skipped.txt $(GO) test -race -count=1 ./...; status=$$?; ./scripts/skipped.sh bin/skipped.txt; exit $$status

## test-short: the fast loop for every edit: skips what needs moto, the emulator, the CLI tools or real time.
## Every short test runs each time; a test binary is linked again only when its package's code changed
## (scripts/test-short.sh). Measured 2026-12-06, idle, 2 cores, warm build cache, `/usr/bin/time make test-short`:
## 10.3 and 10.0 s wall with nothing changed; 16.7 s after an edit to internal/launcher; 47.1 s after a change
## to internal/lifetime's API, which most packages import, so that their tests are compiled and linked again.
## `go test -short -count=1 ./...`, which links all 51 test binaries each time, took 31.4 and 33.1 s.
test-short:
	GO=$(GO) ./scripts/test-short.sh

## lint: formatting, vet, staticcheck and a tidy go.mod
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	$(GO) run $(ACTIONLINT)
	$(GO) run $(GORELEASER) check

## release-check: build every release artifact as a snapshot into dist/, publishing and signing nothing (keyless signing needs the release workflow's OIDC identity)
release-check:
	$(GO) run $(GORELEASER) release --snapshot --clean --skip=publish,sign
	./scripts/release-check.sh

## acceptance: the acceptance test on a real AWS account, with your credentials (docs/acceptance.md; about
## 15 minutes, cents); PLAN=1 prints every AWS call it would make and makes none
acceptance:
	./scripts/acceptance.sh $(if $(filter 1,$(PLAN)),--plan)

## image-test: build the Dockerfile with buildah (amd64 and arm64) and check the image
image-test:
	VERSION=$(VERSION) REVISION=$(COMMIT) ./scripts/image-test.sh

## bench: the performance table of docs/performance.md (needs hyperfine)
bench: build
	$(GO) build -o bin/empty ./bench/empty
	$(MAKE) build-TerminateFunction ARTIFACTS_DIR=bin/terminate-arm64
	$(MAKE) build-TerminateFunction ARTIFACTS_DIR=bin/terminate-local LAMBDA_ARCH=$$($(GO) env GOARCH)
	$(GO) run ./bench

clean:
	rm -rf bin dist
