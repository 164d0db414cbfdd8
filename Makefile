GO ?= go
# The build tools are pinned in tools/go.mod, a module of its own, so that their requirements
# never enter the SDK's go.mod or the module graph of a program importing the SDK.
TOOL := $(GO) tool -modfile=tools/go.mod
OAPI := $(TOOL) oapi-codegen
STATICCHECK := $(TOOL) staticcheck

.PHONY: generate check-generated check-tidy test lint staticcheck bench fuzz demo

## generate: regenerate gen/ from openapi.yaml
generate:
	$(OAPI) -config gen/oapi-codegen.yaml openapi.yaml

## check-generated: fail when gen/ is not what openapi.yaml produces
check-generated: generate
	@git diff --exit-code -- gen/ || (echo "gen/ is stale: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- gen/)" || (git status --porcelain -- gen/; echo "gen/ has untracked or changed files" >&2; exit 1)

## check-tidy: fail when go.mod or go.sum (of the SDK or of tools/) is not what go mod tidy makes
check-tidy:
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

## staticcheck: staticcheck over every package
staticcheck:
	$(STATICCHECK) ./...

## test: the whole suite with the race detector
test:
	$(GO) test -race -count=1 ./...

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || (echo "gofmt needed: $$out" >&2; exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...

## bench: benchmarks against the local server, each beside a raw baseline; writes BENCHMARKS.md
BENCHTIME ?= 1x
bench:
	@out=$$(mktemp); \
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 1 -timeout 60m ./internal/bench/ >$$out 2>&1; rc=$$?; \
	cat $$out; \
	if [ $$rc -ne 0 ]; then rm -f $$out; exit $$rc; fi; \
	$(GO) run ./internal/bench/report -in $$out -out BENCHMARKS.md; rc=$$?; rm -f $$out; exit $$rc

## fuzz: every fuzz target of every package, FUZZTIME (30s) each
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list" >&2; exit 1; }; \
		targets=$$(echo "$$list" | grep '^Fuzz' || true); \
		for f in $$targets; do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## demo: the quickstart (installs bubblewrap first when missing and run as root)
demo:
	$(GO) run ./examples/quickstart
