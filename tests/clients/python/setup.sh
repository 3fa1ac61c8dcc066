#!/usr/bin/env bash
# Installs the Python Kafka clients used by driver.py, each into its own directory (pip --target),
# under ${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/python/:
#   confluent/          confluent-kafka (latest release that installs from a wheel)
#   kafka-python-2.0.2/ kafka-python==2.0.2
#   kafka-python-3/     kafka-python (latest 3.x)
#   common/             fastavro (shared by the three, appended to PYTHONPATH by run.sh)
# Idempotent: a directory is (re)installed only when its ".installed" marker is missing, so a second
# run does nothing and needs no network. Installed versions are written to versions.txt.
# Downloads only from PyPI (pip). Needs no root.
set -euo pipefail

CACHE="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/python"
mkdir -p "$CACHE"

PY="${PYTHON:-python3}"

# name  pip-requirement
SPECS=(
  "confluent|confluent-kafka"
  "kafka-python-2.0.2|kafka-python==2.0.2"
  "kafka-python-3|kafka-python>=3,<4"
  "common|fastavro"
)

changed=0
for spec in "${SPECS[@]}"; do
  name="${spec%%|*}"
  req="${spec#*|}"
  dir="$CACHE/$name"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$req" ]; then
    continue
  fi
  echo "setup.sh: installing $req into $dir" >&2
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  # --only-binary: "latest that installs from a wheel" (kafka-python ships a py2.py3 wheel too).
  "$PY" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --only-binary=:all: --target "$tmp" "$req"
  printf '%s\n' "$req" >"$tmp/.installed"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  changed=1
done

if [ "$changed" = 1 ] || [ ! -f "$CACHE/versions.txt" ]; then
  {
    for spec in "${SPECS[@]}"; do
      name="${spec%%|*}"
      # One line per distribution found in the directory: "<dir> <distribution>==<version>".
      for meta in "$CACHE/$name"/*.dist-info/METADATA; do
        [ -f "$meta" ] || continue
        dist=$(sed -n 's/^Name: //p' "$meta" | head -1)
        ver=$(sed -n 's/^Version: //p' "$meta" | head -1)
        printf '%s %s==%s\n' "$name" "$dist" "$ver"
      done
    done
  } >"$CACHE/versions.txt.tmp"
  mv "$CACHE/versions.txt.tmp" "$CACHE/versions.txt"
fi
cat "$CACHE/versions.txt"
