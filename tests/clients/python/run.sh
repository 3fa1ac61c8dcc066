#!/usr/bin/env bash
# run.sh confluent|kafka-python-2.0.2|kafka-python-3 consume ...   (see ../README.md)
# Runs driver.py with the chosen client library (installed by setup.sh) on PYTHONPATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/python"

client="${1:-}"
case "$client" in
  confluent) dir="$CACHE/confluent" ;;
  kafka-python-2.0.2) dir="$CACHE/kafka-python-2.0.2" ;;
  kafka-python-3) dir="$CACHE/kafka-python-3" ;;
  *)
    echo "usage: $0 confluent|kafka-python-2.0.2|kafka-python-3 consume --bootstrap HOST:PORT ..." >&2
    exit 2
    ;;
esac
if [ ! -f "$dir/.installed" ] || [ ! -f "$CACHE/common/.installed" ]; then
  echo "$0: $client is not installed under $CACHE: run $here/setup.sh first" >&2
  exit 127
fi
export PYTHONPATH="$dir:$CACHE/common${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" "$here/driver.py" "$@"
