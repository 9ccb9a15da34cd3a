# asobserve — the two commands that matter: `make demo` and `make test`.
GO        ?= go
BIN       := bin/asobserve
PKGS      := ./...
DEBS      := clang llvm libbpf-dev bpftool redis-server prometheus iproute2 util-linux libcap2-bin gcc tmux
export GOFLAGS := -buildvcs=false
# The test binaries of one run share their target builds (internal/e2etest).
export ASOBSERVE_TARGET_CACHE := $(CURDIR)/bin/targets

# Manifest validation, offline: kubeconform and kustomize come from the Go module proxy;
# the schemas are generated from Kubernetes' own OpenAPI documents and from the Prometheus
# Operator's API types (tools/k8sschemas).
TOOLS              := $(CURDIR)/bin/tools
KUBECONFORM        := $(TOOLS)/kubeconform
KUSTOMIZE          := $(TOOLS)/kustomize
K8S_VERSION        := 1.30.0
K8S_SCHEMAS        := $(CURDIR)/bin/k8s-schemas
export KUBECONFORM KUSTOMIZE K8S_VERSION
export KUBECONFORM_SCHEMAS := $(K8S_SCHEMAS)/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json

.PHONY: offsets
# Regenerates internal/inspect/offsets_table.go from real builds of every supported client.
offsets:
	$(GO) run ./tools/genoffsets

.PHONY: all build generate check-generate deps test unit demo e2e bench matrix soak offsets vet lint cross clean kubeconform k8s-tools

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/asobserve

# Regenerates the committed bpf2go output (needs Debian clang; `make deps` installs it),
# then the probe table's enums from the BTF of the object just built.
generate:
	cd bpf && $(GO) generate ./...
	cd internal/discovery && $(GO) generate ./...
	cd internal/probes && $(GO) generate ./...
	cd internal/outcome && $(GO) generate ./...

# Fails when regenerating changes a committed output or makes one the commit lacks.
check-generate: generate
	git diff --exit-code -- bpf internal/discovery internal/probes/contract_gen.go internal/outcome/codes_gen.go
	@new="$$(git ls-files --others --exclude-standard -- bpf internal/discovery)"; \
	if [ -n "$$new" ]; then echo "generated but not committed:"; echo "$$new"; exit 1; fi

# Installs the Debian packages the tests use, only those that are missing.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

$(KUBECONFORM):
	GOBIN=$(TOOLS) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.6.1

# go vet, gofmt and staticcheck over the module and the schema tool.
lint: vet $(TOOLS)/staticcheck
	$(TOOLS)/staticcheck $(PKGS)
	cd tools/k8sschemas && $(GO) vet ./... && $(TOOLS)/staticcheck ./...

$(KUSTOMIZE):
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1

$(K8S_SCHEMAS)/.done: $(wildcard tools/k8sschemas/*.go tools/k8sschemas/go.* tools/k8sschemas/crds/go.*)
	rm -rf $(K8S_SCHEMAS) && mkdir -p $(K8S_SCHEMAS)/crds
	cd tools/k8sschemas/crds && $(GO) tool controller-gen crd \
		paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir=$(K8S_SCHEMAS)/crds
	cd tools/k8sschemas && $(GO) run . -out $(K8S_SCHEMAS) -kubernetes-version $(K8S_VERSION) \
		$(K8S_SCHEMAS)/crds/monitoring.coreos.com_servicemonitors.yaml
	touch $@

k8s-tools: $(KUBECONFORM) $(KUSTOMIZE) $(K8S_SCHEMAS)/.done

# Every manifest under deploy/, and what kustomize renders from them, in strict mode.
kubeconform: k8s-tools
	deploy/daemonset/kubeconform.sh

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Every package runs under the race detector. internal/attach and internal/soak run the
# in-process agent under load (probed calls by the hundred thousand, a ring buffer filled
# on purpose, 20 targets at once) and compare its throughput with the target's, so they
# run after the others, by themselves; under -race the stack-growth test makes a quarter
# of its million calls (internal/attach/race_test.go). tools/k8sschemas, a generator
# module with no goroutines, runs without: its Kubernetes and controller-tools
# dependencies took 9 minutes to build with -race on a busy 2-core machine.
LOAD_PKGS := /internal/attach /internal/soak
OTHER_PKGS = $(shell $(GO) list $(PKGS) | grep -v $(foreach p,$(LOAD_PKGS),-e '$(p)$$'))

test: deps k8s-tools build vet cross
	cd tools/k8sschemas && $(GO) test -count=1 ./...
	$(GO) test -race -count=1 -timeout 25m $(OTHER_PKGS)
	$(GO) test -race -count=1 -timeout 25m $(LOAD_PKGS:/%=./%/)

# The daemon for months, compressed: 1,000 short-lived client processes through discovery,
# the agent with stages and tracing, and Redis publishing, then exact counts and every
# per-process resource back to its baseline (internal/soak; `make test` runs 60). Writes
# bench/soak.md. Needs root.
soak: deps
	ASOBSERVE_SOAK_PROCESSES=1000 ASOBSERVE_SOAK_REPORT=$(CURDIR)/bench/soak.md \
		$(GO) test -count=1 -timeout 90m -v -run 'TestSoak$$' ./internal/soak/

# The demo needs root for eBPF; as another user it re-runs itself with sudo when it can.
# On a terminal it is the live view (`asobserve top`) until DURATION; piped, it prints lines.
demo: build
	@if [ "$$(id -u)" = 0 ]; then ./$(BIN) demo --duration $${DURATION:-30s}; \
	else sudo ./$(BIN) demo --duration $${DURATION:-30s}; fi

# Real Prometheus end to end: the seed's PromQL and every dashboard panel.
e2e: deps build
	$(GO) test -tags e2e -count=1 -v -timeout 10m ./test/e2e/

# Writes bench/report.md and bench/report.json (needs root).
bench: build
	$(GO) run ./bench/cmd/benchrun -out bench

# The full compatibility matrix: every client version of inspect.ClientVersions built
# plain, stripped and PIE with Go 1.26, and each major's oldest and newest with every
# toolchain they support (Go 1.21-1.26); `make test` runs a sample of it.
matrix: deps
	@mkdir -p bin
	ASOBSERVE_MATRIX=full ASOBSERVE_MATRIX_OUT=$(CURDIR)/bin/matrix.json $(GO) test -count=1 -timeout 180m -v -run 'TestCompatMatrix' ./internal/attach/
	$(GO) run ./tools/matrixtable bin/matrix.json
	# The long safety run: 10M probed calls under goroutine stack growth (make test runs 1M).
	ASOBSERVE_SAFETY_CALLS=10000000 $(GO) test -count=1 -timeout 30m -run 'TestStackGrowthMillionCalls' ./internal/attach/

cross:
	for p in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do \
		echo "cross $$p"; GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build -o /dev/null ./... || exit 1; done

clean:
	rm -rf bin
