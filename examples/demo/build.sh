#!/usr/bin/env bash
# Builds the demo service into the local image tend-demo:dev, or $DEMO_IMAGE (FROM scratch, static binary).
# Works from any directory and needs no registry. Prints the image id.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${DEMO_IMAGE:-tend-demo:dev}" # another tag for a run of its own (the e2e tests)
gobin="${GO:-go}"
if ! command -v "$gobin" >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	gobin=/usr/local/go/bin/go
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/context"

(cd "$here" && CGO_ENABLED=0 "$gobin" build -trimpath -ldflags "-s -w" -o "$tmp/context/demo" .)
cp "$here/Dockerfile" "$tmp/context/Dockerfile"

# The legacy builder warns on every run that it is deprecated; show its output only on failure.
if ! DOCKER_BUILDKIT=0 docker build --quiet -t "$image" "$tmp/context" >"$tmp/build.log" 2>&1; then
	cat "$tmp/build.log" >&2
	exit 1
fi
docker image inspect --format '{{.Id}}' "$image"
