#!/usr/bin/env bash
# The Kafka endpoint against a real Apache Kafka broker, in the same run, on the same records:
#
#   fetch    one consumer reads the benchmark store (1.37M records written by a private MariaDB,
#            tests/support/make_binlog.sh) from the beginning to the end: kcat (librdkafka 2.0.2)
#            and confluent-kafka (Python). `changetrack serve` against a single-node KRaft broker
#            (tests/support/kafka.sh: Apache Kafka from Maven Central) holding the same Avro
#            values with the same timestamps, same client settings, alternating, medians; and
#            `serve --batch-log` (the batches kept on disk, filled before the timed reads).
#   latency  append-to-client: `ingest --follow` appends one-row transactions at RATE per second;
#            a confluent-kafka consumer in the group reads through `serve`. p50/p99 of store
#            commit -> record in the client's hands (the commit is seen by a process spinning on
#            the store's tail file), and of binlog write -> client.
#   groups   NGROUPS consumers of NGROUPS groups read the store at once (kcat, PER records each):
#            total records/s and the peak memory of `serve`, and of `serve --batch-log`.
#
# Usage: benches/kafka_fetch.sh [fetch] [latency] [groups]      (all three by default)
#
# Environment:
#   RUNS=3            timed runs per client and server (medians)
#   WORK=DIR          keeps the binlog, the store and the broker's data between runs
#                     (default ~/.cache/changetrack-bench)
#   ROWS=1000000      rows of the generated binlog
#   RATE=200          transactions per second for `latency`; SECONDS_LAT=20
#   NGROUPS=100 PER=100000
#   CHANGETRACK_BIN   the changetrack binary (default: cargo build --release)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
WORK=${WORK:-$HOME/.cache/changetrack-bench}
ROWS=${ROWS:-1000000}
RATE=${RATE:-200}
SECONDS_LAT=${SECONDS_LAT:-20}
NGROUPS=${NGROUPS:-100}
PER=${PER:-100000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/changetrack-target}
PW=Bench_pass1
TOPIC=changetrack
PYDIR=${CHANGETRACK_CLIENTS_CACHE:-$HOME/.cache/changetrack-clients}/python
export PYTHONPATH="$PYDIR/confluent:$PYDIR/common"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(fetch latency groups)
python3 -c 'import confluent_kafka' 2>/dev/null || die "confluent-kafka is not set up: tests/clients/python/setup.sh"
command -v kcat >/dev/null || die "kcat is not installed"

if [ -z "${CHANGETRACK_BIN:-}" ]; then
    (cd "$REPO" && cargo build -q --release -p changetrack-cli)
    CHANGETRACK_BIN=$CARGO_TARGET_DIR/release/changetrack
fi
BIN=$CHANGETRACK_BIN
mkdir -p "$WORK"

PIDS=()
BROKER_DIR=""
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    [ -n "$BROKER_DIR" ] && "$REPO/tests/support/kafka.sh" stop --dir "$BROKER_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- the benchmark store ---------------------------------------------------------------------
STORE=$WORK/store
if [ ! -f "$STORE/.complete" ]; then
    if [ ! -s "$WORK/binlog.files" ]; then
        log "generating a binlog of $ROWS rows with a private MariaDB"
        "$REPO/tests/support/make_binlog.sh" "$WORK/binlog" "$ROWS" > "$WORK/binlog.files"
    fi
    rm -rf "$STORE"
    log "ingesting"
    mapfile -t files < "$WORK/binlog.files"
    "$BIN" ingest --store "$STORE" --sync never "${files[@]}" >&2
    touch "$STORE/.complete"
fi
RECORDS=$("$BIN" range --store "$STORE" --format jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["newest"]["seq"])')
log "store: $RECORDS records"

group_id() { # name -> id (created once; a group of that name already in the store is reused)
    local name=$1 f="$WORK/group-$1" id
    if [ ! -s "$f" ]; then
        id=$("$BIN" group list --store "$STORE" --format jsonl |
            python3 -c 'import json,sys; print(next((g["id"] for g in map(json.loads, sys.stdin) if g["name"] == sys.argv[1]), ""))' "$name")
        if [ -z "$id" ]; then
            id=$(CHANGETRACK_PASSWORD=$PW "$BIN" group create --store "$STORE" --name "$name" --user bench | tail -1)
        fi
        [[ "$id" == ctg-* ]] || die "cannot create or find the group $name (got '$id')"
        printf '%s\n' "$id" > "$f"
    fi
    cat "$f"
}
G=$(group_id bench)

start_serve() { # port
    "$BIN" serve --store "$STORE" --kafka-listen "127.0.0.1:$1" --topic $TOPIC -q &
    PIDS+=($!)
    SERVE_PID=$!
    for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
    die "serve did not start"
}

# Until the last record (`-c`), not until the end of the partition (`-e`): the end is known
# only from a Fetch at the end, which both servers hold for the client's fetch.wait.max.ms
# (500 ms) before they answer that nothing came; that wait is the same on both sides and is not
# reading.
kcat_read() { # bootstrap user last-offset -> seconds
    local b=$1 u=$2 want=$3 t0 t1
    t0=$(date +%s.%N)
    kcat -C -q -b "$b" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
        -X "sasl.username=$u" -X "sasl.password=$PW" -t $TOPIC -p 0 -o beginning -c "$RECORDS" -f '%o\n' |
        tail -1 > "$WORK/kcat.last"
    t1=$(date +%s.%N)
    [ "$(cat "$WORK/kcat.last")" = "$want" ] || die "kcat read up to $(cat "$WORK/kcat.last"), not $want"
    echo "$t1 - $t0" | bc -l
}

# `serve --batch-log`: the encoded batches kept on disk, as the broker keeps them. The log is
# filled by serve's own filler thread before the timed reads (the time it took is reported).
start_serve_log() { # port
    local t0 t1 want=$(( RECORDS / 1024 * 1024 ))
    rm -rf "$WORK/batch-log"
    t0=$(date +%s.%N)
    "$BIN" serve --store "$STORE" --kafka-listen "127.0.0.1:$1" --topic $TOPIC \
        --batch-log "$WORK/batch-log" -v 2> "$WORK/serve-log.err" &
    PIDS+=($!)
    LOG_PID=$!
    for _ in $(seq 1200); do
        if grep -q "batch log filled up to offset $want" "$WORK/serve-log.err"; then
            t1=$(date +%s.%N)
            log "the batch log was filled in $(echo "$t1 - $t0" | bc -l) s ($(du -sh "$WORK/batch-log" | cut -f1))"
            return 0
        fi
        sleep 0.05
    done
    die "serve --batch-log did not fill its log: $(tail -3 "$WORK/serve-log.err")"
}

fetch() {
    local sport bport cport lport
    sport=$(free_port); bport=$(free_port); cport=$(free_port); lport=$(free_port)
    start_serve "$sport"
    start_serve_log "$lport"
    BROKER_DIR=$WORK/broker
    local user="bench-$G"
    if [ ! -f "$BROKER_DIR/.produced-$RECORDS-$G" ]; then
        rm -rf "$BROKER_DIR"
    fi
    "$REPO/tests/support/kafka.sh" setup >/dev/null
    "$REPO/tests/support/kafka.sh" start --dir "$BROKER_DIR" --port "$bport" --controller-port "$cport" \
        --sasl-user "$user:$PW" --heap 2g >&2
    if [ ! -f "$BROKER_DIR/.produced-$RECORDS-$G" ]; then
        log "producing the store's Avro values into the broker"
        "$REPO/tests/support/kafka.sh" create-topic --bootstrap "127.0.0.1:$bport" --topic $TOPIC \
            --partitions 1 --replication 1 --sasl-user "$user:$PW" >&2
        "$BIN" dump --store "$STORE" --format avro > "$WORK/dump.avro"
        n=$(python3 "$REPO/benches/kafka/produce.py" "127.0.0.1:$bport" $TOPIC "$user" "$PW" "$WORK/dump.avro")
        [ "$n" = "$RECORDS" ] || die "produced $n records, not $RECORDS"
        rm -f "$WORK/dump.avro"
        touch "$BROKER_DIR/.produced-$RECORDS-$G"
    fi
    # The broker numbers from 0, the store from 1: the last offset differs by one.
    : > "$WORK/fetch.txt"
    for run in $(seq "$RUNS"); do
        for side in serve serve-log broker; do
            case $side in
                serve) b="127.0.0.1:$sport"; last=$RECORDS ;;
                serve-log) b="127.0.0.1:$lport"; last=$RECORDS ;;
                broker) b="127.0.0.1:$bport"; last=$((RECORDS - 1)) ;;
            esac
            t=$(kcat_read "$b" "$user" "$last")
            echo "kcat $side $t" >> "$WORK/fetch.txt"
            read -r n bytes secs < <(python3 "$REPO/benches/kafka/consume.py" "$b" $TOPIC "$user" "$PW" "$G")
            [ "$n" = "$RECORDS" ] || die "confluent-kafka read $n records from $side, not $RECORDS"
            echo "confluent $side $secs" >> "$WORK/fetch.txt"
            log "run $run $side: kcat ${t}s, confluent-kafka ${secs}s"
        done
    done
    printf '\n| client | changetrack serve | serve --batch-log | Kafka 3.9.1 broker | ratios (serve, --batch-log / broker time) |\n| --- | --- | --- | --- | --- |\n'
    for client in kcat confluent; do
        s=$(awk -v c=$client '$1==c && $2=="serve" {print $3}' "$WORK/fetch.txt" | median)
        l=$(awk -v c=$client '$1==c && $2=="serve-log" {print $3}' "$WORK/fetch.txt" | median)
        k=$(awk -v c=$client '$1==c && $2=="broker" {print $3}' "$WORK/fetch.txt" | median)
        printf '| %s | %.2f s (%.0f records/s) | %.2f s (%.0f records/s) | %.2f s (%.0f records/s) | %.2f, %.2f |\n' "$client" \
            "$s" "$(echo "$RECORDS / $s" | bc -l)" "$l" "$(echo "$RECORDS / $l" | bc -l)" \
            "$k" "$(echo "$RECORDS / $k" | bc -l)" "$(echo "$s / $k" | bc -l)" "$(echo "$l / $k" | bc -l)"
    done
    kill "$SERVE_PID" "$LOG_PID" 2>/dev/null || true
    "$REPO/tests/support/kafka.sh" stop --dir "$BROKER_DIR" >/dev/null
    BROKER_DIR=""
}

latency() {
    local dir=$WORK/latency sport
    rm -rf "$dir"
    mkdir -p "$dir/binlogs"
    if [ ! -s "$WORK/oltp.files" ]; then
        log "generating a binlog of one-row transactions with a private MariaDB"
        BATCH=1 BIG=1000 "$REPO/tests/support/make_binlog.sh" "$WORK/oltp" 20000 > "$WORK/oltp.files"
    fi
    sport=$(free_port)
    # The ingester follows a directory that the appender fills one transaction at a time.
    python3 "$REPO/benches/kafka/latency.py" prepare "$(head -1 "$WORK/oltp.files")" "$dir/binlogs"
    "$BIN" ingest --store "$dir/store" --follow "$dir/binlogs" -q &
    PIDS+=($!)
    for _ in $(seq 200); do [ -f "$dir/store/CURRENT" ] && break; sleep 0.05; done
    sleep 1
    local lg
    lg=$(CHANGETRACK_PASSWORD=$PW "$BIN" group create --store "$dir/store" --name lat --user bench | tail -1)
    "$BIN" serve --store "$dir/store" --kafka-listen "127.0.0.1:$sport" --topic $TOPIC -q &
    PIDS+=($!)
    sleep 1
    python3 "$REPO/benches/kafka/latency.py" run "$(head -1 "$WORK/oltp.files")" "$dir/binlogs" \
        "$dir/store" "127.0.0.1:$sport" $TOPIC "bench-$lg" "$PW" "$lg" "$RATE" "$SECONDS_LAT"
}

groups() {
    local ids=()
    for i in $(seq "$NGROUPS"); do ids+=("$(group_id "g$i")"); done
    printf '\n| server | consumers | records | seconds | records/s in total | serve peak RSS |\n| --- | --- | --- | --- | --- | --- |\n'
    for side in serve serve-log; do
        local sport pid
        sport=$(free_port)
        if [ "$side" = serve ]; then
            start_serve "$sport"; pid=$SERVE_PID
        else
            start_serve_log "$sport"; pid=$LOG_PID
        fi
        log "$side: $NGROUPS consumers of $NGROUPS groups, $PER records each"
        local t0 t1 pids=()
        t0=$(date +%s.%N)
        for id in "${ids[@]}"; do
            kcat -C -q -b "127.0.0.1:$sport" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
                -X "sasl.username=bench-$id" -X "sasl.password=$PW" -X "group.id=$id" \
                -t $TOPIC -p 0 -o beginning -c "$PER" -f '%o\n' > "$WORK/group-out-$id" &
            pids+=($!)
        done
        local peak=0
        while kill -0 "${pids[@]}" 2>/dev/null; do
            m=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
            [ "$m" -gt "$peak" ] && peak=$m
            sleep 0.2
        done
        wait "${pids[@]}" || true
        t1=$(date +%s.%N)
        m=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status"); [ "$m" -gt "$peak" ] && peak=$m
        local total=0
        for id in "${ids[@]}"; do
            n=$(wc -l < "$WORK/group-out-$id")
            [ "$n" = "$PER" ] || die "group $id read $n records"
            total=$((total + n)); rm -f "$WORK/group-out-$id"
        done
        local secs label=$side
        [ "$side" = serve-log ] && label="serve --batch-log"
        secs=$(echo "$t1 - $t0" | bc -l)
        printf '| %s | %d (one per group) | %d | %.1f | %.0f | %d MiB |\n' "$label" "$NGROUPS" "$total" "$secs" \
            "$(echo "$total / $secs" | bc -l)" $((peak / 1024))
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

for w in "${what[@]}"; do
    case $w in
        fetch) fetch ;;
        latency) latency ;;
        groups) groups ;;
        *) die "unknown part $w" ;;
    esac
done
