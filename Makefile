# linksim: `make run` runs the smoke scenarios and writes a report;
# `make test` runs every test. See README.md.

GO ?= go
OUT ?= out
PROTOC_GEN_GO = $(shell $(GO) tool -n protoc-gen-go)

.PHONY: run test build generate check-generate fuzz bench relay clean

run:
	$(GO) run ./cmd/linksim run --suite smoke --out $(OUT)/report

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

build:
	CGO_ENABLED=0 $(GO) build -o bin/linksim ./cmd/linksim

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

clean:
	rm -rf bin $(OUT)
