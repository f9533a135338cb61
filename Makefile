# linksim: `make run` runs the smoke scenarios and writes a report;
# `make test` runs every test. See README.md.

GO ?= go
OUT ?= out
PROTOC_GEN_GO = $(shell $(GO) tool -n protoc-gen-go)

.PHONY: run test build wasm generate check-generate fuzz bench bench-browser load relay clean

# The browser scenarios need Chromium; the script installs it when missing.
CHROMIUM = scripts/install-chromium.sh

run:
	$(CHROMIUM)
	$(GO) run ./cmd/linksim run --suite smoke --out $(OUT)/report

test:
	$(CHROMIUM)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

build: wasm
	CGO_ENABLED=0 $(GO) build -o bin/linksim ./cmd/linksim

# The browser web app (Go compiled to WebAssembly), embedded by `build`.
WEB = webclient/static/files
wasm:
	GOOS=js GOARCH=wasm CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(WEB)/app.wasm ./webclient/wasm
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(WEB)/wasm_exec.js

relay: build
	bin/linksim relay --listen 127.0.0.1:8080 --data $(OUT)/relay-data

# Regenerate the protobuf code (committed). Needs protoc: scripts/install-protoc.sh.
generate:
	cd sim/wire/pb && protoc --plugin=protoc-gen-go=$(PROTOC_GEN_GO) \
		--go_out=. --go_opt=paths=source_relative linksim.proto

# Fails when the committed generated code does not match the schema.
check-generate: generate
	git diff --exit-code -- sim/wire/pb

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./sim/wire

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./sim/... ./phone/... ./reports/...

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
		--mix text=80,media=2,read=10,offline=4,reconnect=4 --media-size 64KiB,1MiB --plain --out $(OUT)/load-mix

clean:
	rm -rf bin $(OUT) $(WEB)/app.wasm $(WEB)/wasm_exec.js
