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
MARIADBD=${MARIADBD:-$(command -v mariadbd || echo /usr/sbin/mariadbd)}
MARIADB=${MARIADB:-mariadb}
MARIADB_INSTALL_DB=${MARIADB_INSTALL_DB:-mariadb-install-db}

[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge "$BATCH" ]] || {
    echo "ROWS must be a number >= $BATCH" >&2
    exit 2
}
for prog in "$MARIADBD" "$MARIADB" "$MARIADB_INSTALL_DB"; do
    command -v "$prog" >/dev/null 2>&1 || {
        echo "$prog not found (install mariadb-server and mariadb-client)" >&2
        exit 127
    }
done

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
# The server's files live in a short /tmp path (socket paths are limited to ~107 bytes).
SRV=$(mktemp -d "${TMPDIR:-/tmp}/ct-mkbinlog.XXXXXX")
SERVER_PID=

log() { printf 'make_binlog: %s\n' "$*" >&2; }

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        log "stopping the private server (pid $SERVER_PID)"
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 120; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the server did not stop in 30 s: SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

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

# A free TCP port on 127.0.0.1 (nothing accepts connections there).
free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

sql() { "$MARIADB" --no-defaults --socket="$SRV/mysqld.sock" -uroot --batch --skip-column-names "$@"; }

start=$EPOCHREALTIME
port=$(free_port)
datadir="$SRV/data"
log "initialising a private data directory in $datadir"
"$MARIADB_INSTALL_DB" --no-defaults --datadir="$datadir" --user="$(whoami)" \
    --auth-root-authentication-method=normal --skip-test-db >"$SRV/install-db.log" 2>&1 || {
    cat "$SRV/install-db.log" >&2
    exit 1
}
rm -f "$OUTDIR"/bin.[0-9]* "$OUTDIR/bin.index"
log "starting $MARIADBD on 127.0.0.1:$port, socket $SRV/mysqld.sock, binlogs in $OUTDIR"
"$MARIADBD" --no-defaults --datadir="$datadir" --socket="$SRV/mysqld.sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$SRV/mysqld.pid" \
    --log-error="$SRV/mysqld.err" --user="$(whoami)" \
    --log-bin="$OUTDIR/bin" --server-id=1 --binlog-format=ROW \
    --binlog-row-image=FULL --binlog-row-metadata=FULL --max-binlog-size=67108864 \
    --sync-binlog=0 --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
    --skip-name-resolve --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci >"$SRV/mysqld.out" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 240; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited during startup:"
        tail -n 30 "$SRV/mysqld.err" >&2 || true
        exit 1
    fi
    sql -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.25
done
sql -e 'SELECT 1' >/dev/null
log "server up: $(sql -e 'SELECT VERSION()')"

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
