#!/usr/bin/env bash
# Checks the Java drivers (run.sh kafka-clients / run.sh dts) end to end against a REAL Apache
# Kafka broker started with ../../support/kafka.sh (KRaft, SASL_PLAINTEXT/PLAIN, 127.0.0.1 only):
# seek by time, until-end, commit and resume, wrong password (exit 3), group authorization (exit 4,
# a second broker with ACLs), no offset for a time (exit 5), subscribe mode with a standby that
# takes over. Prints one line per check and "N passed, N failed" at the end; exit 1 if any failed.
#
#   tests/clients/java/verify.sh            (needs mvn, a JDK, kcat and jq; ~3 minutes)
#
# Runs setup.sh and kafka.sh setup first (Maven Central, cached). Everything it starts is stopped
# on exit; its files live in a temporary directory (kept with KEEP=1).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA="$here/../../support/kafka.sh"
RUN="$here/run.sh"

for t in kcat jq; do
  command -v "$t" >/dev/null 2>&1 || { echo "verify.sh: $t not found" >&2; exit 127; }
done
"$here/setup.sh" || exit 1
"$KAFKA" setup >/dev/null || exit 1

W=$(mktemp -d /tmp/ct-java-verify.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  "$KAFKA" stop --dir "$W/b1" >/dev/null 2>&1
  "$KAFKA" stop --dir "$W/b2" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then echo "verify.sh: files kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

free_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok     $1"; }
bad() { failed=$((failed + 1)); echo "FAILED $1${2:+: $2}"; }
# check NAME FILE JQ: JQ is evaluated on the JSON lines of FILE as one array (jq -s)
check() {
  if jq -e -s "$3" "$2" >/dev/null 2>&1; then ok "$1"; else bad "$1" "$(tr '\n' ' ' <"$2" | cut -c1-400)"; fi
}
rc_is() { if [ "$2" = "$3" ]; then ok "$1 (exit $2)"; else bad "$1" "exit $2, expected $3"; fi; }
wait_for() { # wait_for FILE JQ SECONDS
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    jq -e -s "$2" "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

P1=$(free_port) C1=$(free_port)
B="127.0.0.1:$P1"
"$KAFKA" start --dir "$W/b1" --port "$P1" --controller-port "$C1" \
  --sasl-user alice-g1:secret --sasl-user alice-g2:secret --sasl-user alice-g3:secret \
  --sasl-user alice-g4:secret || exit 1
ADMIN=(-X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN -X sasl.username=ct-admin -X sasl.password=ct-admin-secret)
export CT_KAFKA_PASSWORD=secret

# ---- kafka-clients ---------------------------------------------------------------------------
"$KAFKA" create-topic --bootstrap "$B" --topic kc --sasl-user alice-g1:secret >/dev/null
printf 'm0\nm1\nm2\n' | kcat -P -b "$B" "${ADMIN[@]}" -t kc -p 0
sleep 1.5
T=$(date +%s%3N)
sleep 1
printf 'm3\nm4\n' | kcat -P -b "$B" "${ADMIN[@]}" -t kc -p 0
K=("$RUN" kafka-clients consume --bootstrap "$B" --topic kc --user alice)

"${K[@]}" --group g1 --start "time-ms:$T" --until-end >"$W/k1.out" 2>"$W/k1.err"
rc_is "kafka-clients: seek by time-ms, until-end" $? 0
check "kafka-clients: seek 3, records 3 4, end 2" "$W/k1.out" \
  '(map(select(.event=="seek"))[0].offset==3) and ([.[]|select(.event=="record")|.offset]==[3,4]) and (.[-1]=={"event":"end","records":2})'

CT_DRIVER_DEBUG=1 "${K[@]}" --group g1 --start "time-s:$((T / 1000))" --max-records 1 >"$W/k2.out" 2>"$W/k2.err"
rc_is "kafka-clients: time-s passed as is" $? 0
if grep -q "apiKey=LIST_OFFSETS.*timestamp=$((T / 1000))}" "$W/k2.err"; then
  ok "kafka-clients: ListOffsets carries timestamp=$((T / 1000)) (seconds, unchanged)"
else bad "kafka-clients: ListOffsets timestamp" "not found in $W/k2.err"; fi
check "kafka-clients: a real broker reads those seconds as ms: seek 0" "$W/k2.out" '.[0]=={"event":"seek","offset":0}'

"${K[@]}" --group g1 --start time-ms:9999999999999 >"$W/k3.out" 2>"$W/k3.err"
rc_is "kafka-clients: time with no offset" $? 5
check "kafka-clients: seek null" "$W/k3.out" '.==[{"event":"seek","offset":null}]'

"${K[@]}" --group g1 --max-records 2 --commit >"$W/k4.out" 2>"$W/k4.err"
rc_is "kafka-clients: commit (start committed, none yet)" $? 0
s1=$(jq -s -r '[.[]|select(.event=="record")][1].timestamp_ms' "$W/k4.out")
check "kafka-clients: fetched_commit null, records 0 1, committed {2, ts/1000}" "$W/k4.out" \
  "(.[0]=={\"event\":\"fetched_commit\",\"offset\":null,\"metadata\":null}) and ([.[]|select(.event==\"record\")|.offset]==[0,1]) and (map(select(.event==\"committed\"))[-1]=={\"event\":\"committed\",\"offset\":2,\"metadata\":\"$((s1 / 1000))\"})"
"${K[@]}" --group g1 --until-end >"$W/k5.out" 2>"$W/k5.err"
rc_is "kafka-clients: restart from the commit" $? 0
check "kafka-clients: fetched_commit 2, records 2 3 4" "$W/k5.out" \
  "(.[0].event==\"fetched_commit\") and (.[0].offset==2) and (.[0].metadata==\"$((s1 / 1000))\") and ([.[]|select(.event==\"record\")|.offset]==[2,3,4])"

"${K[@]}" --group g1 --start latest --run-seconds 2 >"$W/k6.out" 2>"$W/k6.err"
rc_is "kafka-clients: latest" $? 0
check "kafka-clients: latest reads nothing" "$W/k6.out" '.==[{"event":"end","records":0}]'
"${K[@]}" --group g1 --start offset:4 --until-end >"$W/k7.out" 2>"$W/k7.err"
check "kafka-clients: offset:4" "$W/k7.out" '[.[]|select(.event=="record")|.offset]==[4]'

s=$SECONDS
CT_KAFKA_PASSWORD=wrong "${K[@]}" --group g1 --until-end >"$W/k8.out" 2>"$W/k8.err"
rc_is "kafka-clients: wrong password (in $((SECONDS - s)) s)" $? 3
check "kafka-clients: error auth" "$W/k8.out" '.[-1].event=="error" and .[-1].kind=="auth"'
"${K[@]}" --group nobody --until-end >"$W/k9.out" 2>"$W/k9.err"
rc_is "kafka-clients: unknown user alice-nobody" $? 3

# subscribe: A holds partition 0, B is a standby and takes over when A is killed
S=("${K[@]}" --group g2 --mode subscribe --session-timeout-ms 6000)
"${S[@]}" --client-id A --run-seconds 90 >"$W/ka.out" 2>"$W/ka.err" &
pa=$!
pids+=("$pa")
wait_for "$W/ka.out" 'any(.event=="assigned")' 30 || true
"${S[@]}" --client-id B --run-seconds 90 --commit --until-end >"$W/kb.out" 2>"$W/kb.err" &
pb=$!
pids+=("$pb")
wait_for "$W/kb.out" 'any(.event=="assigned")' 30 || true
sleep 2
check "kafka-clients subscribe: A gets [0]" "$W/ka.out" 'map(select(.event=="assigned"))[-1].partitions==[0]'
check "kafka-clients subscribe: B gets [] (standby)" "$W/kb.out" 'map(select(.event=="assigned"))==[{"event":"assigned","partitions":[]}]'
kill -KILL "$pa"
wait "$pa" 2>/dev/null
s=$SECONDS
wait "$pb"
rc=$?
rc_is "kafka-clients subscribe: B ends (until-end) after A was killed ($((SECONDS - s)) s)" "$rc" 0
check "kafka-clients subscribe: B takes [0] and reads 0..4" "$W/kb.out" \
  '(map(select(.event=="assigned"))[-1].partitions==[0]) and ([.[]|select(.event=="record")|.offset]==[0,1,2,3,4]) and (.[-1]=={"event":"end","records":5})'

# ---- DTS SDK ---------------------------------------------------------------------------------
"$KAFKA" create-topic --bootstrap "$B" --topic dts --sasl-user alice-g1:secret >/dev/null
"$KAFKA" create-topic --bootstrap "$B" --topic dts14 --sasl-user alice-g1:secret >/dev/null
"$KAFKA" create-topic --bootstrap "$B" --topic dtsph --sasl-user alice-g1:secret >/dev/null
# Kafka timestamps in seconds (--timestamp-unit s), so that the broker answers offsetsForTimes(SECS)
"$RUN" dts-produce --bootstrap "$B" --topic dts --user alice --group g1 --count 5 \
  --source-timestamp 1700000000 --timestamp-unit s --born-timestamp >"$W/dts.produced" 2>"$W/p1.err"
"$RUN" dts-produce --bootstrap "$B" --topic dts14 --user alice --group g1 --count 3 \
  --source-timestamp 1700000000 --timestamp-unit s >"$W/dts14.produced" 2>"$W/p2.err"
"$RUN" dts-produce --bootstrap "$B" --topic dtsph --user alice --group g1 --count 2 --placeholders 2 \
  --source-timestamp 1700000000 --timestamp-unit s >"$W/dtsph.produced" 2>"$W/p3.err"
D=("$RUN" dts consume --bootstrap "$B" --user alice)

"${D[@]}" --topic dts --group g3 --start time-s:1700000002 --until-end >"$W/d1.out" 2>"$W/d1.err"
rc_is "dts: seek by time-s (initCheckpoint, forced), until-end" $? 0
check "dts: seek 2, records 2 3 4 with ids 3 4 5" "$W/d1.out" \
  '(.[0]=={"event":"seek","offset":2}) and ([.[]|select(.event=="record")|[.offset,.id,.source_timestamp,.operation,.object_name]]==[[2,3,1700000002,"INSERT","ctdb.t1"],[3,4,1700000003,"INSERT","ctdb.t1"],[4,5,1700000004,"INSERT","ctdb.t1"]]) and (.[-1]=={"event":"end","records":3})'
# the SDK 2.0.0 schema has no bornTimestamp: its re-encoding is the served bytes without that long
if python3 - "$W/dts.produced" "$W/d1.out" <<'EOF'; then ok "dts: value = served bytes minus the trailing bornTimestamp"; else bad "dts: value bytes"; fi
import base64, json, sys
prod = {j["offset"]: base64.b64decode(j["value"]) for j in map(json.loads, open(sys.argv[1]))}
recs = [j for j in map(json.loads, open(sys.argv[2])) if j["event"] == "record"]
sys.exit(0 if recs and all(prod[r["offset"]].startswith(base64.b64decode(r["value"])) and
                           len(prod[r["offset"]]) - len(base64.b64decode(r["value"])) == 6 for r in recs) else 1)
EOF
"${D[@]}" --topic dts14 --group g3 --start earliest --until-end >"$W/d2.out" 2>"$W/d2.err"
if python3 - "$W/dts14.produced" "$W/d2.out" <<'EOF'; then ok "dts: 14-field records re-encode to identical bytes"; else bad "dts: identical bytes"; fi
import json, sys
prod = {j["offset"]: j["value"] for j in map(json.loads, open(sys.argv[1]))}
recs = [j for j in map(json.loads, open(sys.argv[2])) if j["event"] == "record"]
sys.exit(0 if len(recs) == 3 and all(prod[r["offset"]] == r["value"] for r in recs) else 1)
EOF

"${D[@]}" --topic dts --group g3 --start committed --max-records 2 --commit >"$W/d3.out" 2>"$W/d3.err"
rc_is "dts: commit (start committed, none yet)" $? 0
check "dts: fetched_commit null, seek 0, records 0 1, committed {1, sourceTimestamp}" "$W/d3.out" \
  '(.[0]=={"event":"fetched_commit","offset":null,"metadata":null}) and ([.[]|select(.event=="record")|.offset]==[0,1]) and (map(select(.event=="committed"))[-1]=={"event":"committed","offset":1,"metadata":"1700000001"})'
"${D[@]}" --topic dts --group g3 --start committed --until-end >"$W/d4.out" 2>"$W/d4.err"
rc_is "dts: restart from the commit" $? 0
check "dts: fetched_commit {1, 1700000001}, seek by that time: 1, records 1..4" "$W/d4.out" \
  '(.[0]=={"event":"fetched_commit","offset":1,"metadata":"1700000001"}) and (.[1]=={"event":"seek","offset":1}) and ([.[]|select(.event=="record")|.offset]==[1,2,3,4])'
"${K[@]}" --group g3 --topic dts --start committed --max-records 1 --run-seconds 3 >"$W/d4k.out" 2>"$W/d4k.err"
check "dts: kafka-clients sees the SDK's commit (own offset, metadata seconds)" "$W/d4k.out" \
  '.[0]=={"event":"fetched_commit","offset":1,"metadata":"1700000001"}'

"${D[@]}" --topic dts --group g3 --start time-s:1800000000 >"$W/d5.out" 2>"$W/d5.err"
rc_is "dts: time with no offset" $? 5
check "dts: seek null" "$W/d5.out" '.==[{"event":"seek","offset":null}]'

s=$SECONDS
CT_KAFKA_PASSWORD=wrong "${D[@]}" --topic dts --group g3 --start time-s:1700000000 >"$W/d6.out" 2>"$W/d6.err"
rc_is "dts: wrong password (in $((SECONDS - s)) s)" $? 3
s=$SECONDS
CT_KAFKA_PASSWORD=wrong "${D[@]}" --topic dts --group g3 --mode subscribe >"$W/d7.out" 2>"$W/d7.err"
rc_is "dts subscribe: wrong password (in $((SECONDS - s)) s)" $? 3

"${D[@]}" --topic dtsph --group g3 --start earliest --until-end >"$W/d8.out" 2>"$W/d8.err"
rc_is "dts: until-end with trailing placeholders (<= 2 bytes, skipped by the SDK)" $? 0
check "dts: records 0 1, then end" "$W/d8.out" '([.[]|select(.event=="record")|.offset]==[0,1]) and (.[-1]=={"event":"end","records":2})'

"${D[@]}" --topic dts --group g3 --start latest >"$W/d9.out" 2>"$W/d9.err"
rc_is "dts: latest is not expressible" $? 1

SD=("${D[@]}" --topic dts --group g4 --mode subscribe --session-timeout-ms 6000 --start committed)
"${SD[@]}" --client-id A --run-seconds 90 >"$W/da.out" 2>"$W/da.err" &
pa=$!
pids+=("$pa")
wait_for "$W/da.out" 'any(.event=="assigned")' 30 || true
"${SD[@]}" --client-id B --run-seconds 90 --commit --until-end >"$W/db.out" 2>"$W/db.err" &
pb=$!
pids+=("$pb")
wait_for "$W/db.out" 'any(.event=="assigned")' 30 || true
sleep 2
check "dts subscribe: A gets [0]" "$W/da.out" 'map(select(.event=="assigned"))[-1].partitions==[0]'
check "dts subscribe: B gets [] (standby)" "$W/db.out" 'map(select(.event=="assigned"))==[{"event":"assigned","partitions":[]}]'
kill -KILL "$pa"
wait "$pa" 2>/dev/null
s=$SECONDS
wait "$pb"
rc=$?
rc_is "dts subscribe: B ends (until-end) after A was killed ($((SECONDS - s)) s)" "$rc" 0
check "dts subscribe: B takes [0], reads 0..4, commits 4" "$W/db.out" \
  '(map(select(.event=="assigned"))[-1].partitions==[0]) and ([.[]|select(.event=="record")|.offset]==[0,1,2,3,4]) and (map(select(.event=="committed"))[-1].offset==4) and (.[-1]=={"event":"end","records":5})'

# ---- group authorization: a second broker with ACLs (no ACL for the groups) -----------------
P2=$(free_port) C2=$(free_port)
B2="127.0.0.1:$P2"
if "$KAFKA" start --dir "$W/b2" --port "$P2" --controller-port "$C2" --sasl-user alice-g1:secret --authorizer; then
  "$KAFKA" create-topic --bootstrap "$B2" --topic cdc --sasl-user ct-admin:ct-admin-secret >/dev/null
  "$KAFKA" acl --bootstrap "$B2" --add --allow-principal User:alice-g1 --operation Read --operation Describe --topic cdc >/dev/null
  for c in kafka-clients dts; do
    for m in assign subscribe; do
      "$RUN" "$c" consume --bootstrap "$B2" --topic cdc --user alice --group g1 --mode "$m" --start committed \
        --run-seconds 30 >"$W/ga-$c-$m.out" 2>"$W/ga-$c-$m.err"
      rc_is "$c $m: group not authorized" $? 4
    done
  done
else
  bad "second broker with --authorizer did not start"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
