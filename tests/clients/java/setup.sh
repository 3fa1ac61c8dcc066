#!/usr/bin/env bash
# Builds the Java drivers once into ${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/java/:
#   classes/          the compiled drivers (src/main/java) and log4j.properties (src/main/resources)
#   deps.classpath    the dependencies' class path (Maven, from pom.xml: Maven Central, ~/.m2)
#   classpath         classes/ first, then the dependencies: what run.sh uses
#   versions.txt      the resolved jars
# Idempotent: does nothing (and needs no network) unless pom.xml or a source is newer than the
# last build. Needs mvn and a JDK (javac); no root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/java"
stamp="$CACHE/.built"

newer() { # any file of the sources or the pom newer than $1 (or $1 missing)
  [ -f "$1" ] || return 0
  [ -n "$(find "$here/pom.xml" "$here/src" -type f -newer "$1" -print -quit)" ]
}

if ! newer "$stamp"; then
  exit 0
fi
for t in mvn javac; do
  command -v "$t" >/dev/null 2>&1 || { echo "setup.sh: $t not found (install maven and a JDK)" >&2; exit 1; }
done
mkdir -p "$CACHE"

if [ ! -f "$CACHE/deps.classpath" ] || [ "$here/pom.xml" -nt "$CACHE/deps.classpath" ]; then
  echo "setup.sh: resolving the class path of $here/pom.xml (Maven Central)" >&2
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:build-classpath \
    -Dmdep.outputFile="$CACHE/deps.classpath.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  # exactly one kafka-clients, and it is 2.7.0
  kc=$(tr ':' '\n' <"$CACHE/deps.classpath.tmp" | grep '/kafka-clients-[^/]*\.jar$' || true)
  if [ "$(printf '%s\n' "$kc" | grep -c .)" != 1 ] || [[ $kc != */kafka-clients-2.7.0.jar ]]; then
    echo "setup.sh: expected exactly kafka-clients-2.7.0.jar on the class path, got: $kc" >&2
    exit 1
  fi
  tr ':' '\n' <"$CACHE/deps.classpath.tmp" | sed 's|.*/||' >"$CACHE/versions.txt"
  mv "$CACHE/deps.classpath.tmp" "$CACHE/deps.classpath"
fi

echo "setup.sh: compiling the Java drivers into $CACHE/classes" >&2
rm -rf "$CACHE/classes.tmp"
mkdir -p "$CACHE/classes.tmp"
find "$here/src/main/java" -name '*.java' >"$CACHE/sources.txt"
javac -nowarn -encoding UTF-8 --release 11 -d "$CACHE/classes.tmp" \
  -cp "$(cat "$CACHE/deps.classpath")" @"$CACHE/sources.txt"
cp -R "$here/src/main/resources/." "$CACHE/classes.tmp/"
rm -rf "$CACHE/classes"
mv "$CACHE/classes.tmp" "$CACHE/classes"
printf '%s:%s\n' "$CACHE/classes" "$(cat "$CACHE/deps.classpath")" >"$CACHE/classpath"
touch "$stamp"
echo "setup.sh: Java drivers ready ($CACHE)" >&2
