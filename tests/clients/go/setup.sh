#!/usr/bin/env bash
# Builds the sarama driver (main.go, sarama version pinned in go.mod) into
# ${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/go/sarama-driver.
# Idempotent: rebuilds only when go.mod, go.sum, main.go or the Go version change (a stamp file
# next to the binary), so a second run is instant. Modules come from the Go module proxy into
# the default GOMODCACHE on the first build; later builds need no network. Needs no root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/go"
BIN="$CACHE/sarama-driver"
command -v go >/dev/null 2>&1 || { echo "setup.sh: go not found" >&2; exit 1; }
mkdir -p "$CACHE"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
stamp=$( (cd "$here" && cat go.mod go.sum main.go && go version) | sha256sum | cut -d' ' -f1)
if [ -x "$BIN" ] && [ -f "$BIN.stamp" ] && [ "$(cat "$BIN.stamp")" = "$stamp" ]; then
  cat "$CACHE/versions.txt"
  exit 0
fi

echo "setup.sh: building $BIN" >&2
(cd "$here" && go build -trimpath -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
{
  echo "sarama $(cd "$here" && go list -m -f '{{.Version}}' github.com/IBM/sarama)"
  go version
} >"$CACHE/versions.txt"
printf '%s\n' "$stamp" >"$BIN.stamp"
cat "$CACHE/versions.txt"
