#!/usr/bin/env bash
# End-to-end benchmark: `changetrack decode --format jsonl` against
# `mariadb-binlog --base64-output=decode-rows -v` on the same ROW-format binlog.
#
# Usage:
#   benches/decode_vs_mariadb_binlog.sh              # generate a binlog with a private server, then time
#   benches/decode_vs_mariadb_binlog.sh FILE         # time an existing binlog file (no server)
#
# Environment:
#   RUNS=5              timed runs of each tool (alternating; one untimed warm-up run each first)
#   ROWS=1000000        rows inserted (UPDATEs touch ROWS/10 more rows, DELETEs ROWS/50)
#   BATCH=1000          rows per multi-row INSERT statement (and per UPDATE/DELETE statement range)
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
ROWS=${ROWS:-1000000}
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
    log "generated in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
    local file
    file=$(sql -e 'SHOW BINARY LOGS' | awk 'NR == 1 { print $1 }')
    stop_server
    BINLOG="$datadir/$file"
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

    local size stats rows
    size=$(stat -c %s "$BINLOG")
    stats=$("$CHANGETRACK_BIN" --quiet decode --stats --format jsonl "$BINLOG" 2>&1 >/dev/null | tail -n 1)
    rows=$(sed -n 's/.*(\([0-9]*\) rows).*/\1/p' <<<"$stats")
    echo "binlog:        $BINLOG"
    echo "size:          $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
    echo "row changes:   $rows"
    echo "stats:         $stats"
    echo "changetrack:   $CHANGETRACK_BIN"
    echo "mariadb-binlog: $(command -v "$MARIADB_BINLOG") ($("$MARIADB_BINLOG" --version | head -n 1))"
    echo

    # Warm-up (page cache), untimed.
    "$CHANGETRACK_BIN" --quiet decode --format jsonl "$BINLOG" >/dev/null
    "$MARIADB_BINLOG" --no-defaults --base64-output=decode-rows -v "$BINLOG" >/dev/null

    local i t ct_times=() mb_times=()
    for ((i = 1; i <= RUNS; i++)); do
        t=$(time_cmd "$CHANGETRACK_BIN" --quiet decode --format jsonl "$BINLOG")
        ct_times+=("$t")
        printf 'run %d: changetrack    %8.3f s\n' "$i" "$t"
        t=$(time_cmd "$MARIADB_BINLOG" --no-defaults --base64-output=decode-rows -v "$BINLOG")
        mb_times+=("$t")
        printf 'run %d: mariadb-binlog %8.3f s\n' "$i" "$t"
    done

    local ct_med mb_med ratio_med
    ct_med=$(printf '%s\n' "${ct_times[@]}" | median)
    mb_med=$(printf '%s\n' "${mb_times[@]}" | median)
    ratio_med=$(for ((i = 0; i < RUNS; i++)); do awk -v c="${ct_times[i]}" -v m="${mb_times[i]}" 'BEGIN { printf "%.6f\n", m / c }'; done | median)
    echo
    awk -v c="$ct_med" -v m="$mb_med" -v s="$size" -v r="${rows:-0}" -v q="$ratio_med" 'BEGIN {
        printf "median changetrack:    %.3f s  (%.1f MB/s, %.0f rows/s)\n", c, s / c / 1e6, r / c
        printf "median mariadb-binlog: %.3f s  (%.1f MB/s, %.0f rows/s)\n", m, s / m / 1e6, r / m
        printf "ratio of medians (mariadb-binlog / changetrack): %.2fx\n", m / c
        printf "median of per-run ratios:                        %.2fx\n", q
    }'
}

main "$@"
