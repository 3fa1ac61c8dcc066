#!/usr/bin/env bash
# End-to-end benchmark: `changetrack decode --format jsonl|avro|text` against
# `mariadb-binlog --base64-output=decode-rows -v` on the same ROW-format binlog. (The same next to
# the peers' decoders and the library's BinlogReader: benches/peers/run.sh, which uses --generate.)
#
# Usage:
#   benches/decode_vs_mariadb_binlog.sh              # generate a binlog with a private server, then time
#   benches/decode_vs_mariadb_binlog.sh FILE         # time an existing binlog file (no server)
#   benches/decode_vs_mariadb_binlog.sh --generate OUT   # only generate (SHAPE, ROWS, BATCH), copy
#                                                        # the binlog to OUT; no changetrack needed
#
# Environment:
#   SHAPE=bulk          what the generated binlog holds:
#                         bulk    multi-row statements: ROWS rows inserted BATCH per statement, then
#                                 UPDATEs of ROWS/10 rows and DELETEs of ROWS/50 (BATCH*10 and
#                                 BATCH*50 id ranges); ROWS defaults to 1000000 (1.12M row changes)
#                         txn100  transactions of 100 row changes, mixed: each inserts 70 new rows,
#                                 updates 20 rows of the transaction before and deletes 10 of the one
#                                 before that; ROWS (row changes) defaults to 1400000
#                         txn1    one-row transactions (autocommit statements), mixed: out of every
#                                 10, 7 INSERTs, 2 UPDATEs, 1 DELETE; ROWS defaults to 200000
#   RUNS=5              timed runs of each tool (alternating; one untimed warm-up run each first)
#   ROWS                see SHAPE
#   BATCH=1000          bulk: rows per multi-row INSERT statement (and per UPDATE/DELETE statement range)
#   FORMATS="jsonl avro text"   changetrack output formats timed (each against mariadb-binlog)
#   KEEP=1              keep the temporary directory (data dir, binlog, server log)
#   CHANGETRACK_BIN     changetrack binary to time; when unset, `cargo build --release` is run and
#                       $CARGO_TARGET_DIR/release/changetrack is used
#   CARGO_TARGET_DIR    default: $HOME/.cache/changetrack-target
#   MARIADB_BINLOG      default: mariadb-binlog
#   MARIADBD, MARIADB, MARIADB_INSTALL_DB   server, client and install-db programs
#
# The private server only ever listens on 127.0.0.1 (a free high port) and on a socket in the
# temporary directory; it is stopped by pid on exit, whatever happens.
set -euo pipefail

RUNS=${RUNS:-5}
SHAPE=${SHAPE:-bulk}
case "$SHAPE" in
    bulk) ROWS=${ROWS:-1000000} ;;
    txn100) ROWS=${ROWS:-1400000} ;;
    txn1) ROWS=${ROWS:-200000} ;;
    *)
        echo "SHAPE must be bulk, txn100 or txn1 (not $SHAPE)" >&2
        exit 2
        ;;
esac
FORMATS=${FORMATS:-jsonl avro text}
BATCH=${BATCH:-1000}
KEEP=${KEEP:-0}
MARIADB_BINLOG=${MARIADB_BINLOG:-mariadb-binlog}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/changetrack-target}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/changetrack-bench.XXXXXX")
SRV=$TMP
# shellcheck source=tests/support/mariadb.sh
source "$REPO/tests/support/mariadb.sh"

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    local rc=$?
    stop_server
    if [[ "$KEEP" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

generate_binlog() {
    local datadir="$TMP/data"
    require_mariadb
    start_server "$datadir" "$datadir/bench-bin" 1073741824 || return 1

    sql <<'SQL'
CREATE DATABASE bench;
CREATE TABLE bench.orders (
    id          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    customer_id INT NOT NULL,
    qty         SMALLINT NOT NULL,
    status      TINYINT UNSIGNED NOT NULL,
    sku         VARCHAR(32) NOT NULL,
    email       VARCHAR(100) NULL,
    price       DECIMAL(12,2) NOT NULL,
    discount    DECIMAL(5,4) NULL,
    created_at  DATETIME(6) NOT NULL,
    updated_at  TIMESTAMP NULL DEFAULT NULL,
    note        TEXT NULL,
    KEY (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
SQL
    local start=$EPOCHREALTIME
    case "$SHAPE" in
        bulk) generate_bulk ;;
        txn100) generate_txn100 ;;
        txn1) generate_txn1 ;;
    esac
    log "generated in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
    local file
    file=$(sql -e 'SHOW BINARY LOGS' | awk 'NR == 1 { print $1 }')
    stop_server
    BINLOG="$datadir/$file"
}

# The row values of the bulk shape for ids FROM_SEQ (an expression over `seq`).
ROW_VALUES="seq, (seq * 7919) % 100003, 1 + seq % 20, seq % 5,
       CONCAT('SKU-', LPAD(seq % 50000, 6, '0')),
       IF(seq % 11 = 0, NULL, CONCAT('customer', (seq * 7919) % 100003, '@example.com')),
       ((seq * 37) % 100000) / 100 + 0.99,
       IF(seq % 3 = 0, NULL, (seq % 1000) / 10000),
       TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 17 SECOND + INTERVAL (seq * 7) % 1000000 MICROSECOND,
       IF(seq % 4 = 0, NULL, TIMESTAMP'2024-06-01 00:00:00' + INTERVAL seq MINUTE),
       IF(seq % 7 = 0, NULL, REPEAT(CONCAT('order ', seq, ': lorem ipsum dolor sit amet; '), 1 + seq % 4))"
UPDATE_SET="status = (status + 1) % 5, price = price * 1.05, updated_at = TIMESTAMP'2025-01-01 12:00:00' + INTERVAL id SECOND, note = CONCAT(COALESCE(note, ''), ' [updated]')"

# bench.src: N rows of the bulk shape's values (with a shorter note: 1 or 2 sentences, not 1 to
# 4), written with sql_log_bin = 0 (not in the binlog), copied into bench.orders by the
# transaction shapes.
fill_source() {
    local n=$1
    log "filling bench.src with $n rows (not binlogged)"
    sql <<SQL
USE bench;
SET SESSION sql_log_bin = 0;
CREATE TABLE src LIKE orders;
INSERT INTO src SELECT ${ROW_VALUES/1 + seq % 4/1 + seq % 2} FROM seq_1_to_$n;
SQL
}

# 100-row transactions: transaction k inserts ids 70k+1..70k+70, updates the 20 ids of
# transaction k-1 with id % 7 IN (0, 1) and deletes the 10 of transaction k-2 with id % 7 = 2.
generate_txn100() {
    local txns=$(((ROWS + 99) / 100))
    fill_source $((txns * 70))
    log "writing $txns transactions of 100 row changes (70 INSERT, 20 UPDATE, 10 DELETE)"
    awk -v txns="$txns" -v set="$UPDATE_SET" 'BEGIN {
        print "USE bench;"
        for (k = 0; k < txns; k++) {
            lo = k * 70 + 1
            print "BEGIN;"
            printf "INSERT INTO orders SELECT * FROM src WHERE id BETWEEN %d AND %d;\n", lo, lo + 69
            if (k >= 1) printf "UPDATE orders SET %s WHERE id BETWEEN %d AND %d AND id %% 7 IN (0, 1);\n", set, lo - 70, lo - 1
            if (k >= 2) printf "DELETE FROM orders WHERE id BETWEEN %d AND %d AND id %% 7 = 2;\n", lo - 140, lo - 71
            print "COMMIT;"
        }
        print "FLUSH BINARY LOGS;"
    }' | sql
}

# One-row transactions (autocommit): block b of 10 statements inserts ids 7b+1..7b+7, updates
# ids 7b-6 and 7b-5 (block b-1) and deletes id 7b-11 (block b-2).
generate_txn1() {
    local blocks=$(((ROWS + 9) / 10))
    fill_source $((blocks * 7))
    log "writing $((blocks * 10)) one-row transactions (7 INSERT, 2 UPDATE, 1 DELETE in every 10)"
    awk -v blocks="$blocks" -v set="$UPDATE_SET" 'BEGIN {
        print "USE bench;"
        for (b = 0; b < blocks; b++) {
            lo = b * 7 + 1
            for (i = 0; i < 7; i++) printf "INSERT INTO orders SELECT * FROM src WHERE id = %d;\n", lo + i
            if (b >= 1) for (i = 0; i < 2; i++) printf "UPDATE orders SET %s WHERE id = %d;\n", set, lo - 7 + i
            if (b >= 2) printf "DELETE FROM orders WHERE id = %d;\n", lo - 14 + 2
        }
        print "FLUSH BINARY LOGS;"
    }' | sql
}

generate_bulk() {
    log "inserting $ROWS rows ($BATCH per statement), then updating $((ROWS / 10)) and deleting $((ROWS / 50))"
    {
        echo 'USE bench;'
        local lo hi
        for ((lo = 1; lo <= ROWS; lo += BATCH)); do
            hi=$((lo + BATCH - 1))
            ((hi > ROWS)) && hi=$ROWS
            cat <<SQL
INSERT INTO orders (id, customer_id, qty, status, sku, email, price, discount, created_at, updated_at, note)
SELECT seq, (seq * 7919) % 100003, 1 + seq % 20, seq % 5,
       CONCAT('SKU-', LPAD(seq % 50000, 6, '0')),
       IF(seq % 11 = 0, NULL, CONCAT('customer', (seq * 7919) % 100003, '@example.com')),
       ((seq * 37) % 100000) / 100 + 0.99,
       IF(seq % 3 = 0, NULL, (seq % 1000) / 10000),
       TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 17 SECOND + INTERVAL (seq * 7) % 1000000 MICROSECOND,
       IF(seq % 4 = 0, NULL, TIMESTAMP'2024-06-01 00:00:00' + INTERVAL seq MINUTE),
       IF(seq % 7 = 0, NULL, REPEAT(CONCAT('order ', seq, ': lorem ipsum dolor sit amet; '), 1 + seq % 4))
FROM seq_${lo}_to_${hi};
SQL
        done
        # UPDATEs: every 10th row (status, price, updated_at, note), in BATCH-sized id ranges.
        for ((lo = 1; lo <= ROWS; lo += BATCH * 10)); do
            hi=$((lo + BATCH * 10 - 1))
            echo "UPDATE orders SET status = (status + 1) % 5, price = price * 1.05, updated_at = TIMESTAMP'2025-01-01 12:00:00' + INTERVAL id SECOND, note = CONCAT(COALESCE(note, ''), ' [updated]') WHERE id BETWEEN $lo AND $hi AND id % 10 = 0;"
        done
        # DELETEs: every 50th row.
        for ((lo = 1; lo <= ROWS; lo += BATCH * 50)); do
            hi=$((lo + BATCH * 50 - 1))
            echo "DELETE FROM orders WHERE id BETWEEN $lo AND $hi AND id % 50 = 1;"
        done
        echo 'FLUSH BINARY LOGS;'
    } | sql
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Seconds taken by a command (its stdout to /dev/null; stderr kept for errors).
time_cmd() {
    local start end
    start=$EPOCHREALTIME
    "$@" >/dev/null
    end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }'
}

main() {
    if [[ "${1:-}" == --generate ]]; then
        [[ $# -eq 2 ]] || { log "usage: $0 --generate OUT"; return 2; }
        generate_binlog
        cp "$BINLOG" "$2"
        log "SHAPE=$SHAPE ROWS=$ROWS: $(stat -c %s "$2") bytes in $2"
        return 0
    fi
    if [[ -z "${CHANGETRACK_BIN:-}" ]]; then
        log "building changetrack (release) in $CARGO_TARGET_DIR"
        (cd "$REPO" && cargo build --release --quiet --bin changetrack)
        CHANGETRACK_BIN="$CARGO_TARGET_DIR/release/changetrack"
    fi
    [[ -x "$CHANGETRACK_BIN" ]] || { log "no changetrack binary at $CHANGETRACK_BIN"; return 1; }
    command -v "$MARIADB_BINLOG" >/dev/null || { log "$MARIADB_BINLOG not found"; return 1; }

    if [[ $# -ge 1 ]]; then
        BINLOG=$1
        [[ -f "$BINLOG" ]] || { log "no such file: $BINLOG"; return 1; }
    else
        generate_binlog
    fi

    local size stats rows formats f
    read -r -a formats <<<"$FORMATS"
    size=$(stat -c %s "$BINLOG")
    stats=$("$CHANGETRACK_BIN" --quiet decode --stats --format jsonl "$BINLOG" 2>&1 >/dev/null | tail -n 1)
    rows=$(sed -n 's/.*(\([0-9]*\) rows).*/\1/p' <<<"$stats")
    echo "binlog:        $BINLOG"
    [[ $# -ge 1 ]] || echo "shape:         SHAPE=$SHAPE ROWS=$ROWS"
    echo "size:          $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
    echo "row changes:   $rows"
    echo "stats:         $stats"
    echo "changetrack:   $CHANGETRACK_BIN"
    echo "mariadb-binlog: $(command -v "$MARIADB_BINLOG") ($("$MARIADB_BINLOG" --version | head -n 1))"
    echo

    # Warm-up (page cache), untimed.
    for f in "${formats[@]}"; do
        "$CHANGETRACK_BIN" --quiet decode --format "$f" "$BINLOG" >/dev/null
    done
    "$MARIADB_BINLOG" --no-defaults --base64-output=decode-rows -v "$BINLOG" >/dev/null

    # Alternating: in each run every format once, then mariadb-binlog.
    local i t mb_times=()
    declare -A ct_times=()
    for ((i = 1; i <= RUNS; i++)); do
        for f in "${formats[@]}"; do
            t=$(time_cmd "$CHANGETRACK_BIN" --quiet decode --format "$f" "$BINLOG")
            ct_times[$f]+="$t "
            printf 'run %d: changetrack %-5s %8.3f s\n' "$i" "$f" "$t"
        done
        t=$(time_cmd "$MARIADB_BINLOG" --no-defaults --base64-output=decode-rows -v "$BINLOG")
        mb_times+=("$t")
        printf 'run %d: mariadb-binlog    %8.3f s\n' "$i" "$t"
    done

    local ct_med mb_med ratio_med ts
    mb_med=$(printf '%s\n' "${mb_times[@]}" | median)
    echo
    awk -v m="$mb_med" -v s="$size" -v r="${rows:-0}" 'BEGIN {
        printf "median mariadb-binlog:     %.3f s  (%.1f MB/s, %.0f rows/s)\n", m, s / m / 1e6, r / m
    }'
    for f in "${formats[@]}"; do
        read -r -a ts <<<"${ct_times[$f]}"
        ct_med=$(printf '%s\n' "${ts[@]}" | median)
        ratio_med=$(for ((i = 0; i < RUNS; i++)); do awk -v c="${ts[i]}" -v m="${mb_times[i]}" 'BEGIN { printf "%.6f\n", m / c }'; done | median)
        awk -v f="$f" -v c="$ct_med" -v m="$mb_med" -v s="$size" -v r="${rows:-0}" -v q="$ratio_med" 'BEGIN {
            printf "median changetrack %-5s:  %.3f s  (%.1f MB/s, %.0f rows/s)\n", f, c, s / c / 1e6, r / c
            printf "  ratio of medians (mariadb-binlog / changetrack): %.2fx   (changetrack / mariadb-binlog: %.2f)\n", m / c, c / m
            printf "  median of per-run ratios:                        %.2fx\n", q
        }'
    done
}

main "$@"
