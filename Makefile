# The two commands of the README: `make demo` runs a demo stack that heals
# itself; `make test` runs every test, the Docker integration tests included.

GO ?= go
BIN := bin/tend

.PHONY: build image demo demo-bin demo-down test test-short fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/tend

# tend's own image, FROM scratch around the static binary (packaging/Dockerfile).
image: build
	scripts/image.sh

demo: build demo-bin
	scripts/demo.sh

# The demo service's static binary, compiled into the build context of the demo
# stack's image (examples/demo): tend builds the image FROM scratch around it.
demo-bin:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o examples/demo/demo ./examples/demo

demo-down:
	scripts/demo.sh down

# The integration tests drive the real engine; they fail (never skip) without one.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 30m ./...
	GO=$(GO) scripts/fuzz.sh

# Each fuzz target a few seconds past its seed corpus (FUZZTIME=30s make fuzz: longer).
fuzz:
	GO=$(GO) scripts/fuzz.sh

# Unit tests only, for a quick loop while editing.
test-short:
	$(GO) test -short -count=1 ./...

bench: build
	bench/run.sh

clean:
	rm -rf bin .demo examples/demo/demo
