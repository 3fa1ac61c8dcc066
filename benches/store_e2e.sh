#!/usr/bin/env bash
# End-to-end store benchmark on a big binlog written by a real MariaDB: ingest throughput (both
# durability modes), sequential read (`dump` and the in-process iterator), seek latency by
# timestamp and by checkpoint (p50/p99 over 1000 random positions), and store size per row.
#
# Usage:
#   benches/store_e2e.sh                 # generate a binlog with tests/support/make_binlog.sh
#   benches/store_e2e.sh FILE...         # use existing binlog file(s) (one source, in order)
#
# Environment:
#   RUNS=3              timed runs of each measurement (medians are reported)
#   ROWS=1000000        rows to generate (only without FILE arguments)
#   KEEP=1              keep the work directory (stores, generated binlogs)
#   WORK=DIR            work directory (default: a new temporary directory)
#   CHANGETRACK_BIN     changetrack binary; when unset, `cargo build --release` is run and
#                       $CARGO_TARGET_DIR/release/changetrack is used
#   SKIP_CRITERION=1    skip the in-process part (criterion bench `store`: read/iter, seeks)
#   CARGO_TARGET_DIR    default: $HOME/.cache/changetrack-target
#
# What is measured:
#   ingest     `changetrack ingest --store S --sync per-batch|never FILE...` into a fresh store;
#              time and records from its summary line (decode + store, store open excluded),
#              rows from `changetrack decode --stats`. per-batch: every commit fsyncs the WAL
#              (survives power loss); never: no fsync (survives a killed process only). The page
#              cache is warm (the binlog is read once before timing).
#   dump       `changetrack dump --store S --format jsonl >/dev/null`, wall time (process start,
#              read-only open, decode, JSON rendering): first as left by ingest, then again after
#              the criterion step has reopened the store as its writer (log flushed to SSTs).
#   iterate    criterion `read/iter` (records decoded through Store::iter, nothing rendered).
#   seeks      criterion `seek/*` and the raw-sample percentiles (`seek-percentiles` lines):
#              resolve, and iter()+first next(), by timestamp and by checkpoint.
#   size       `du -sb` of the store directory and `changetrack stats` against the binlog size.
set -euo pipefail

RUNS=${RUNS:-3}
ROWS=${ROWS:-1000000}
KEEP=${KEEP:-0}
SKIP_CRITERION=${SKIP_CRITERION:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/changetrack-target}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OWN_WORK=0
if [[ -z "${WORK:-}" ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/changetrack-store-e2e.XXXXXX")
    OWN_WORK=1
fi
mkdir -p "$WORK"

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

cleanup() {
    local rc=$?
    if [[ "$KEEP" == 1 || "$OWN_WORK" == 0 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# median of the numbers on stdin (one per line)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan" } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# --- the binlog -------------------------------------------------------------------------------
FILES=()
if (($# > 0)); then
    for f in "$@"; do
        [[ -f "$f" ]] || die "not a file: $f"
        FILES+=("$f")
    done
else
    GEN="$REPO/tests/support/make_binlog.sh"
    [[ -x "$GEN" || -f "$GEN" ]] || die "no binlog given and $GEN does not exist (usage: $0 [BINLOG...])"
    log "generating a binlog of $ROWS rows with $GEN"
    mkdir -p "$WORK/binlog"
    while IFS= read -r line; do
        [[ -f "$line" ]] && FILES+=("$line")
    done < <(bash "$GEN" "$WORK/binlog" "$ROWS")
    ((${#FILES[@]} > 0)) || die "$GEN printed no binlog path"
fi

# --- the binary -------------------------------------------------------------------------------
if [[ -z "${CHANGETRACK_BIN:-}" ]]; then
    log "building the release binary (cargo build --release)"
    (cd "$REPO" && nice -n 10 cargo build --release --quiet --bin changetrack)
    CHANGETRACK_BIN="$CARGO_TARGET_DIR/release/changetrack"
fi
[[ -x "$CHANGETRACK_BIN" ]] || die "no binary at $CHANGETRACK_BIN"
CT=$CHANGETRACK_BIN

BINLOG_BYTES=0
for f in "${FILES[@]}"; do
    BINLOG_BYTES=$((BINLOG_BYTES + $(stat -c %s "$f")))
done

# Rows and records as decoded (this also warms the page cache).
DSTATS=$("$CT" decode --stats --format jsonl "${FILES[@]}" 2>&1 >/dev/null | grep ' records (' | tail -n 1)
RECORDS=$(sed -E 's/.* ([0-9]+) records \(([0-9]+) rows\).*/\1/' <<<"$DSTATS")
ROWCOUNT=$(sed -E 's/.* ([0-9]+) records \(([0-9]+) rows\).*/\2/' <<<"$DSTATS")
[[ "$ROWCOUNT" =~ ^[0-9]+$ ]] || die "cannot read the row count from: $DSTATS"
log "input: ${FILES[*]}: $BINLOG_BYTES bytes, $RECORDS records, $ROWCOUNT rows"
((ROWCOUNT >= 1000000)) || log "warning: fewer than 1M rows ($ROWCOUNT)"
log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- ingest -----------------------------------------------------------------------------------
STORE="$WORK/store"
declare -A ING_SECS ING_WALL
for mode in per-batch never; do
    for ((run = 1; run <= RUNS; run++)); do
        rm -rf "$STORE"
        t0=$(now)
        out=$("$CT" -q ingest --store "$STORE" --sync "$mode" "${FILES[@]}")
        t1=$(now)
        # ingested T transactions, R records, B bytes in X.XXXs (...)
        recs=$(sed -E 's/^ingested [0-9]+ transactions, ([0-9]+) records.*/\1/' <<<"$out")
        secs=$(sed -E 's/.* bytes in ([0-9.]+)s .*/\1/' <<<"$out")
        [[ "$recs" == "$RECORDS" ]] || die "ingest stored $recs records, decode gave $RECORDS: $out"
        wall=$(calc "$t1 - $t0" 3)
        log "ingest --sync $mode run $run: ${secs}s (wall ${wall}s): $(calc "$ROWCOUNT / $secs" 0) rows/s"
        ING_SECS[$mode]+="$secs "
        ING_WALL[$mode]+="$wall "
    done
    # Keep the last per-batch store (the default mode) for the read measurements.
    if [[ "$mode" == per-batch ]]; then
        rm -rf "$STORE.keep"
        mv "$STORE" "$STORE.keep"
    fi
done
rm -rf "$STORE"
mv "$STORE.keep" "$STORE"

size_line() { du -sb "$STORE" | cut -f1; }
SIZE_AFTER_INGEST=$(size_line)
STATS_AFTER_INGEST=$("$CT" stats --store "$STORE")
RECORD_BYTES=$(awk '/^record bytes:/ { print $3 }' <<<"$STATS_AFTER_INGEST")
STORED=$(awk '/^records:/ { print $2 }' <<<"$STATS_AFTER_INGEST")
[[ "$STORED" == "$RECORDS" ]] || die "the store holds $STORED records, expected $RECORDS"

# --- dump -------------------------------------------------------------------------------------
dump_runs() {
    local run t0 t1 all=""
    for ((run = 1; run <= RUNS; run++)); do
        t0=$(now)
        "$CT" dump --store "$STORE" --format jsonl >/dev/null
        t1=$(now)
        all+="$(calc "$t1 - $t0" 3) "
    done
    echo "$all"
}
DUMP1=$(dump_runs)
log "dump (as left by ingest): ${DUMP1}s"

# --- in-process: iteration and seeks (criterion) ----------------------------------------------
ITER_RATE=nan
ITER1_RATE=nan
declare -A SEEK_P50 SEEK_P99
if [[ "$SKIP_CRITERION" != 1 ]]; then
    log "criterion: read/iter and seeks against $STORE"
    CRIT_OUT="$WORK/criterion.txt"
    (cd "$REPO" && CHANGETRACK_BENCH_STORE="$STORE" nice -n 0 cargo bench --quiet --bench store -- --discard-baseline 'read/iter|seek' 2>&1) | tee "$CRIT_OUT" >&2
    # NAME ... thrpt:  [a Melem/s b Melem/s c Melem/s]: the middle estimate.
    crit_rate() {
        awk -v name="$1" '
            $1 == name { on = 1 }
            on && /thrpt:/ {
                for (i = 1; i <= NF; i++) if ($i ~ /elem\/s/) { n++; if (n == 2) { v = $(i - 1); u = $i } }
                m = (u ~ /^M/) ? 1e6 : (u ~ /^K/) ? 1e3 : (u ~ /^G/) ? 1e9 : 1
                printf "%.0f", v * m; exit
            }' "$CRIT_OUT"
    }
    ITER_RATE=$(crit_rate read/iter)
    ITER1_RATE=$(crit_rate read/iter-one-thread)
    while IFS= read -r line; do
        kind=$(sed -E 's/.*kind=([^ ]+) .*/\1/' <<<"$line")
        SEEK_P50[$kind]=$(sed -E 's/.* p50_us=([0-9.]+).*/\1/' <<<"$line")
        SEEK_P99[$kind]=$(sed -E 's/.* p99_us=([0-9.]+).*/\1/' <<<"$line")
    done < <(grep '^seek-percentiles ' "$CRIT_OUT")
fi
SIZE_AFTER_REOPEN=$(size_line)
DUMP2=$(dump_runs)
log "dump (after a writer reopen): ${DUMP2}s"

# --- summary ----------------------------------------------------------------------------------
verdict() { awk "BEGIN { print ($1) ? \"ok\" : \"MISSED\" }"; }
printf '\n'
printf 'Store end to end: %s\n' "${FILES[*]}"
printf '  %d bytes, %d rows, %d records (rows + BEGIN/COMMIT/DDL); %s runs each, medians; %s cores, load %s\n' \
    "$BINLOG_BYTES" "$ROWCOUNT" "$RECORDS" "$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-44s %14s %14s %10s  %s\n' "measurement" "value" "target" "verdict" "runs"
row() { printf '%-44s %14s %14s %10s  %s\n' "$@"; }
for mode in per-batch never; do
    s=$(tr ' ' '\n' <<<"${ING_SECS[$mode]}" | grep . | median)
    rps=$(calc "$ROWCOUNT / $s" 0)
    row "ingest --sync $mode: rows/s" "$rps" ">= 500000" "$(verdict "$rps >= 500000")" "${ING_SECS[$mode]}s"
    row "ingest --sync $mode: records/s" "$(calc "$RECORDS / $s" 0)" "" "" "wall ${ING_WALL[$mode]}s"
    row "ingest --sync $mode: binlog MB/s" "$(calc "$BINLOG_BYTES / $s / 1e6" 1)" "" "" ""
done
for pass in 1 2; do
    runs=$([[ $pass == 1 ]] && echo "$DUMP1" || echo "$DUMP2")
    label=$([[ $pass == 1 ]] && echo "as ingested" || echo "after reopen")
    s=$(tr ' ' '\n' <<<"$runs" | grep . | median)
    rate=$(calc "$RECORDS / $s" 0)
    # Not the read target (that is Store::iter below): this adds process start and JSON.
    row "dump --format jsonl ($label): records/s" "$rate" "" "" "${runs}s"
done
if [[ "$ITER_RATE" != nan && -n "$ITER_RATE" ]]; then
    row "Store::iter (criterion read/iter): records/s" "$ITER_RATE" ">= 2000000" "$(verdict "$ITER_RATE >= 2000000")" "criterion median"
fi
if [[ "$ITER1_RATE" != nan && -n "$ITER1_RATE" ]]; then
    row "  the same on one thread (iter-one-thread)" "$ITER1_RATE" "" "" "criterion median"
fi
for kind in "resolve(timestamp)" "iter(timestamp)+next" "resolve(checkpoint)" "iter(checkpoint)+next" "get(seq)"; do
    [[ -n "${SEEK_P99[$kind]:-}" ]] || continue
    row "seek $kind: p50 / p99 us" "${SEEK_P50[$kind]} / ${SEEK_P99[$kind]}" "p99 <= 50" "$(verdict "${SEEK_P99[$kind]} <= 50")" "1000 random positions"
done
row "binlog bytes/row" "$(calc "$BINLOG_BYTES / $ROWCOUNT" 1)" "" "" ""
row "store bytes/row, du after ingest" "$(calc "$SIZE_AFTER_INGEST / $ROWCOUNT" 1)" "<= binlog" "$(verdict "$SIZE_AFTER_INGEST <= $BINLOG_BYTES")" "$SIZE_AFTER_INGEST B"
if [[ "$SKIP_CRITERION" != 1 ]]; then
    row "store bytes/row, du after reopen" "$(calc "$SIZE_AFTER_REOPEN / $ROWCOUNT" 1)" "<= binlog" "$(verdict "$SIZE_AFTER_REOPEN <= $BINLOG_BYTES")" "$SIZE_AFTER_REOPEN B"
fi
row "encoded record bytes/row (stats)" "$(calc "$RECORD_BYTES / $ROWCOUNT" 1)" "" "" "$RECORD_BYTES B, before compression"
printf '\nchangetrack stats after ingest:\n%s\n' "$STATS_AFTER_INGEST"
