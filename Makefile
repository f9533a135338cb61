# linksim: `make run` runs the smoke scenarios and writes a report;
# `make test` runs every test. See README.md.

GO ?= go
OUT ?= out
PROTOC_GEN_GO = $(shell $(GO) tool -n protoc-gen-go)
PROTOC_GEN_GO_VTPROTO = $(shell $(GO) tool -n protoc-gen-go-vtproto)
PROTOC_GEN_GO_CHECK = $(shell $(GO) tool -n protoc-gen-go-check)

.PHONY: run test test-nats race lint build wasm generate check-generate fuzz chaos bench bench-browser survey-camera flood load relay cluster cluster-up cluster-chaos clean

# The browser scenarios need Chromium; the script installs it when missing.
CHROMIUM = scripts/install-chromium.sh

run:
	$(CHROMIUM)
	$(GO) run ./cmd/linksim run --suite smoke --out $(OUT)/report

test:
	$(CHROMIUM)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	# The web app's own tests, in WebAssembly under node (as the page runs).
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec "$$($(GO) env GOROOT)/lib/wasm/go_js_wasm_exec" ./webclient/wasm

# The relay's whole test suite again with every relay a cluster node on an
# embedded NATS server (docs/cluster.md); about 15 s.
test-nats:
	LINKSIM_TEST_NATS=1 $(GO) test -count=1 ./sim/relay/

# The race detector over the packages with the most concurrency (the CI
# runs it after make test).
race:
	$(GO) test -race -count=1 -timeout 30m ./sim/... ./reports/... ./harness/...

# staticcheck, pinned in go.mod as a tool (make test runs go vet).
lint:
	$(GO) tool staticcheck ./...

# Static, so the container backend can put it in an image FROM scratch;
# stamped with the git revision (linksim version).
build: wasm
	CGO_ENABLED=0 $(GO) build -buildvcs=true -o bin/linksim ./cmd/linksim

# The browser web app (Go compiled to WebAssembly), embedded by `build`,
# and its gzip, which the relay sends to browsers that accept it.
WEB = webclient/static/files
wasm:
	GOOS=js GOARCH=wasm CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(WEB)/app.wasm ./webclient/wasm
	gzip -9 -n -c $(WEB)/app.wasm > $(WEB)/app.wasm.gz
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(WEB)/wasm_exec.js

relay: build
	bin/linksim relay --listen 127.0.0.1:8080 --data $(OUT)/relay-data

# Regenerate the protobuf code (committed). Needs protoc: scripts/install-protoc.sh.
# Three plugins, all tools in go.mod: protoc-gen-go (the types, and the
# reflection runtime's descriptors), protoc-gen-go-vtproto (MarshalVT,
# UnmarshalVT, SizeVT: encoding without reflection, which the devices and the
# relay use through pb.Marshal, pb.Unmarshal and pb.Size) and
# protoc-gen-go-check (in sim/wire/pb: finds what vtproto would encode or
# decode unlike protobuf-go, so that those three behave as protobuf-go does).
generate:
	cd sim/wire/pb && protoc --plugin=protoc-gen-go=$(PROTOC_GEN_GO) \
		--plugin=protoc-gen-go-vtproto=$(PROTOC_GEN_GO_VTPROTO) \
		--plugin=protoc-gen-go-check=$(PROTOC_GEN_GO_CHECK) \
		--go_out=. --go_opt=paths=source_relative \
		--go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size \
		--go-check_out=. --go-check_opt=paths=source_relative \
		linksim.proto

# Fails when the committed generated code does not match the schema.
check-generate: generate
	git diff --exit-code -- sim/wire/pb

# Every fuzz target in the tree (found by name, so a new one joins by itself),
# one after the other for FUZZTIME each. Failing inputs land in the package's
# testdata/fuzz; commit them as regression seeds once fixed.
FUZZTIME ?= 10s
fuzz:
	@grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | \
		sed 's|^\./\(.*\)/[^/]*:func |\1 |' | sort -u | \
	while read pkg name; do \
		echo "== $$name in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

# The long chaos run (docs/performance.md): 1,000 faults while three users
# message each other; `make test` runs a 50-fault version of it.
CHAOS_FAULTS ?= 1000
CHAOS_SEED ?= 1
chaos:
	$(GO) test -count=1 -run '^TestChaos$$' -v -timeout 30m ./harness -chaos.faults $(CHAOS_FAULTS) -chaos.seed $(CHAOS_SEED)

# Every scenario against a relay cluster (three NATS servers, two relay
# nodes), as processes and, when Docker answers, as containers: node loss,
# NATS server loss, partition, rolling restart, cross-node pairing, and the
# smoke flows. make test runs only the node-loss flow (label cluster-smoke).
cluster:
	$(GO) test -count=1 -timeout 20m ./scenarios -ginkgo.label-filter=cluster

# Issue 10's kill measure (docs/performance.md): a relay node and a NATS
# server killed with SIGKILL KILLS times each while users message at
# KILL_RATE msg/s, on cluster processes (no Docker); make test runs 2 each.
KILLS ?= 20
KILL_RATE ?= 80
KILL_USERS ?= 24
cluster-chaos:
	$(GO) test -count=1 -run '^TestClusterKills$$' -v -timeout 60m ./harness -cluster.kills $(KILLS) -cluster.rate $(KILL_RATE) -cluster.users $(KILL_USERS)

# A relay cluster on this machine until Ctrl-C: three NATS servers and two
# relay nodes (http://127.0.0.21:8080/ and http://127.0.0.22:8080/), state
# in $(OUT)/cluster. See README.md.
cluster-up: build
	scripts/cluster-up.sh bin/linksim $(OUT)/cluster

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./sim/... ./phone/... ./reports/...

# The relay under each flood of issue 12 at two sizes (up to 19,000
# keep-alives, 300,000 upload-token requests, 180 MB for an offline device,
# 2,000 link-and-remove cycles): its RSS, heap, open files, and the time a
# fresh phone and companion then take. Figures in docs/performance.md.
flood:
	$(GO) test -run '^$$' -bench BenchmarkFloods -benchtime 1x -timeout 30m -v ./sim/relay -args -flood

# Browser benchmarks (pairing in Chromium, gozxing vs zbarimg, memory per
# page); figures in docs/performance.md.
bench-browser:
	$(CHROMIUM)
	$(GO) test -run '^$$' -bench BenchmarkBrowserPairing -benchtime 30x ./harness
	$(GO) test -run '^$$' -bench BenchmarkQRDecode -benchtime 40x ./harness
	$(GO) test -run '^$$' -bench BenchmarkBrowserClients -benchtime 1x -timeout 30m ./harness

# The full load benchmark (minutes; not run by CI): figures in
# docs/performance.md, section "Load runs". Reports go to $(OUT)/load-*.
load:
	CGO_ENABLED=0 $(GO) build -o bin/linksim ./cmd/linksim
	bin/linksim load --users 1000 --link-parallel 64 --rate 1 --duration 1s --prekeys 100 --plain --out $(OUT)/load-link-prekeys100
	bin/linksim load --users 1000 --link-parallel 64 --rate 1 --duration 1s --plain --out $(OUT)/load-link
	bin/linksim load --users 9500 --workers 2 --link-parallel 64 --rate 1000 --duration 5m \
		--threshold 'msg.deliver p99<50ms' --plain --out $(OUT)/load-19k
	bin/linksim load --users 1000 --rate 200 --duration 1m \
		--mix text=80,media=2,read=10,offline=3,reconnect=3,unlink=2 --media-size 64KiB,1MiB --plain --out $(OUT)/load-mix
	$(CHROMIUM)
	for layout in tabs context; do \
		bin/linksim load --users 2500 --browsers 20 --layout $$layout --link-parallel 32 --rate 50 --duration 1m \
			--plain --out $(OUT)/load-mixed-$$layout || exit 1; \
	done

# The camera survey over 100 real-shaped linking payloads per preset, with
# zbarimg alongside (a few minutes); the table is in docs/performance.md.
survey-camera:
	$(GO) test -count=1 -run TestSurveyRealShaped -v -timeout 30m ./phone/camera -camera.payloads 100

clean:
	rm -rf bin $(OUT) $(WEB)/app.wasm $(WEB)/wasm_exec.js
