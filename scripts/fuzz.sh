#!/usr/bin/env bash
# Runs every fuzz target of the repository for a short while (FUZZTIME each,
# default 5s): `make test` calls it, so CI searches a little past the seed
# corpus on every run. `go test -fuzz` takes one target of one package at a
# time. A failure leaves the input under the package's testdata/fuzz/; fix
# the cause and keep the file as a corpus entry (plain `go test` runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
go="${GO:-go}"
fuzztime="${FUZZTIME:-5s}"
targets=(
	"./internal/compose FuzzLoad"
	"./internal/compose FuzzExtension"
	"./internal/spec FuzzValidate"
	"./internal/api FuzzAPIRequest"
	"./internal/proxy FuzzLoopRequest"
	"./internal/proxy FuzzLoopAnswer"
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== fuzz $name ($pkg) for $fuzztime"
	"$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
done
