#!/usr/bin/env bash
# run.sh consume --bootstrap HOST:PORT ...   (see ../README.md): runs the sarama driver that
# setup.sh built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/go/sarama-driver"
if [ ! -x "$BIN" ]; then
  echo "$0: the sarama driver is not built ($BIN): run $here/setup.sh first" >&2
  exit 127
fi
exec "$BIN" "$@"
