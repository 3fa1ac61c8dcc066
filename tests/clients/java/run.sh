#!/usr/bin/env bash
# run.sh kafka-clients consume ...   plain kafka-clients 2.7.0 KafkaConsumer (KafkaClientDriver)
# run.sh dts consume ...             the DTS consumer SDK 2.0.0 (DtsDriver)
# run.sh dts-produce ...             writes DTS Avro records into a real broker (DtsTestProducer)
# See ../README.md for the consume contract and NOTES.md for details. Needs setup.sh first
# (exit 127 otherwise). CT_DRIVER_DEBUG=1 logs every Kafka request (NetworkClient DEBUG) on stderr.
# JAVA_OPTS is added to the JVM options (default heap -Xmx256m).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/java"

client="${1:-}"
case "$client" in
  kafka-clients) main=changetrack.clients.KafkaClientDriver ;;
  dts) main=changetrack.clients.DtsDriver ;;
  dts-produce) main=changetrack.clients.DtsTestProducer ;;
  *)
    echo "usage: $0 kafka-clients|dts consume --bootstrap HOST:PORT --topic NAME --user USER --group GROUP_ID [options]" >&2
    echo "       $0 dts-produce --bootstrap HOST:PORT --topic NAME ..." >&2
    exit 2
    ;;
esac
shift
if [ ! -f "$CACHE/.built" ] || [ ! -f "$CACHE/classpath" ]; then
  echo "$0: the Java drivers are not built under $CACHE: run $here/setup.sh first" >&2
  exit 127
fi
# shellcheck disable=SC2086
exec "${JAVA:-java}" -Xmx256m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${JAVA_OPTS:-} \
  -cp "$(cat "$CACHE/classpath")" "$main" "$@"
