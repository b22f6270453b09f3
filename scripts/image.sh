#!/usr/bin/env bash
# Builds tend's own image (packaging/Dockerfile) FROM scratch around the
# static binary: TEND_BIN (default bin/tend), tagged TEND_IMAGE (default tend:dev).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TEND_BIN:-bin/tend}
image=${TEND_IMAGE:-tend:dev}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/tend"
cp packaging/Dockerfile "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null
echo "$image"
