#!/usr/bin/env bash
# Generates ROW-format MariaDB binlogs for the store's crash test (tests/crash.rs) with a
# private, throw-away server.
#
# Usage:
#   tests/support/make_binlog.sh OUTDIR [ROWS]
#
# Writes the binlogs to OUTDIR/bin.NNNNNN (rotated at 64 MiB, so there are several files) and
# prints the paths of the files that hold the workload's events, one per line, in order, on
# stdout. Everything else goes to stderr.
#
# Workload (ROWS defaults to 1000000):
#   - ROWS inserted rows, INSERT ... SELECT FROM seq_A_to_B in transactions of BATCH (1000) rows,
#     with a realistic table (integers, DECIMAL, DATETIME(6), TIMESTAMP, VARCHAR, TEXT, NULLs);
#   - ROWS/10 rows updated and ROWS/50 rows deleted, in statements of at most BATCH*10 ids;
#   - two large transactions: one UPDATE of BIG (100000) rows in a single statement, and one
#     explicit multi-statement transaction (INSERT BIG/2 rows, UPDATE them, DELETE them);
#   - a few DDL statements (CREATE TABLE, ALTER TABLE ADD COLUMN / ADD INDEX, RENAME, DROP).
#
# Environment: BATCH=1000, BIG=100000, KEEP=1 (keep the server's data directory),
# MARIADBD, MARIADB, MARIADB_INSTALL_DB (server, client and install-db programs).
#
# The private server only ever listens on 127.0.0.1 (a free high port) and on a socket in its
# own temporary directory; it is stopped by pid on exit, whatever happens.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUTDIR [ROWS]" >&2
    exit 2
fi
OUTDIR=$1
ROWS=${2:-1000000}
BATCH=${BATCH:-1000}
BIG=${BIG:-100000}
KEEP=${KEEP:-0}
[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge "$BATCH" ]] || {
    echo "ROWS must be a number >= $BATCH" >&2
    exit 2
}
# shellcheck source=tests/support/mariadb.sh
source "$(dirname "${BASH_SOURCE[0]}")/mariadb.sh"
require_mariadb

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
# The server's files live in a short /tmp path (socket paths are limited to ~107 bytes).
SRV=$(mktemp -d "${TMPDIR:-/tmp}/ct-mkbinlog.XXXXXX")

log() { printf 'make_binlog: %s\n' "$*" >&2; }

cleanup() {
    local rc=$?
    stop_server
    if [[ "$KEEP" == 1 || $rc -ne 0 ]]; then
        log "kept the server directory $SRV"
    else
        rm -rf "$SRV"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$EPOCHREALTIME
rm -f "$OUTDIR"/bin.[0-9]* "$OUTDIR/bin.index"
start_server "$SRV/data" "$OUTDIR/bin" 67108864 || exit 1

insert_range() { # lo hi
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
FROM seq_${1}_to_${2};
SQL
}

log "workload: $ROWS inserted rows ($BATCH per transaction), $((ROWS / 10)) updated, $((ROWS / 50)) deleted, large transactions of $BIG and $((BIG / 2 * 3)) row changes, DDL"
{
    cat <<'SQL'
CREATE DATABASE crash;
USE crash;
CREATE TABLE orders (
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
CREATE TABLE audit (
    id   INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    what VARCHAR(64) NOT NULL,
    at   DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
SQL
    half=$(((ROWS / BATCH / 2) * BATCH))
    for ((lo = 1; lo <= ROWS; lo += BATCH)); do
        hi=$((lo + BATCH - 1))
        ((hi > ROWS)) && hi=$ROWS
        if ((lo == half + 1)); then
            # DDL in the middle of the stream: later rows carry the new column.
            echo "ALTER TABLE orders ADD COLUMN tag VARCHAR(16) NULL DEFAULT NULL;"
            echo "INSERT INTO audit (what, at) VALUES ('added tag', '2024-07-01 00:00:00');"
        fi
        insert_range "$lo" "$hi"
    done
    echo "ALTER TABLE orders ADD INDEX by_sku (sku);"
    # UPDATEs: every 10th row, in id ranges of BATCH*10 (BATCH rows per statement).
    for ((lo = 1; lo <= ROWS; lo += BATCH * 10)); do
        hi=$((lo + BATCH * 10 - 1))
        echo "UPDATE orders SET status = (status + 1) % 5, price = price * 1.05, updated_at = TIMESTAMP'2025-01-01 12:00:00' + INTERVAL id SECOND, note = CONCAT(COALESCE(note, ''), ' [updated]'), tag = 'upd' WHERE id BETWEEN $lo AND $hi AND id % 10 = 0;"
    done
    # Large transaction 1: one statement updating BIG rows.
    echo "UPDATE orders SET qty = qty + 1, tag = 'big' WHERE id <= $BIG;"
    # DELETEs: every 50th row.
    for ((lo = 1; lo <= ROWS; lo += BATCH * 50)); do
        hi=$((lo + BATCH * 50 - 1))
        echo "DELETE FROM orders WHERE id BETWEEN $lo AND $hi AND id % 50 = 1;"
    done
    # Large transaction 2: several statements (INSERT, UPDATE, DELETE) in one transaction.
    echo "BEGIN;"
    insert_range $((ROWS + 1)) $((ROWS + BIG / 2))
    echo "INSERT INTO audit (what, at) VALUES ('bulk', '2025-02-01 00:00:00');"
    echo "UPDATE orders SET status = 9, tag = 'bulk' WHERE id > $ROWS;"
    echo "DELETE FROM orders WHERE id > $ROWS;"
    echo "COMMIT;"
    cat <<'SQL'
RENAME TABLE audit TO audit_old;
INSERT INTO audit_old (what, at) VALUES ('renamed', '2025-03-01 00:00:00');
DROP TABLE audit_old;
SQL
} | sql

files=$(sql -e 'SHOW BINARY LOGS' | awk '{ print $1 }')
sql -e 'FLUSH BINARY LOGS'
stop_server
log "generated in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
for f in $files; do
    echo "$OUTDIR/$f"
done
