# A private, throw-away MariaDB server for scripts (sourced by tests/support/make_binlog.sh and
# benches/decode_vs_mariadb_binlog.sh; tests/support/mariadb.rs is the same for Rust tests).
#
# The caller sets SRV (a short directory for the socket, pid file and logs: socket paths are
# limited to about 107 bytes) and defines log(). The server only ever listens on 127.0.0.1 (a
# free high port) and on the socket in SRV, and is stopped by pid (stop_server; call it from
# the caller's EXIT trap).
#
# Environment: MARIADBD, MARIADB, MARIADB_INSTALL_DB (server, client and install-db programs).

MARIADBD=${MARIADBD:-$(command -v mariadbd || echo /usr/sbin/mariadbd)}
MARIADB=${MARIADB:-mariadb}
MARIADB_INSTALL_DB=${MARIADB_INSTALL_DB:-mariadb-install-db}
SERVER_PID=

# Exits with 127 unless the server, client and install-db programs are installed.
require_mariadb() {
    local prog
    for prog in "$MARIADBD" "$MARIADB" "$MARIADB_INSTALL_DB"; do
        command -v "$prog" >/dev/null 2>&1 || {
            echo "$prog not found (install mariadb-server and mariadb-client)" >&2
            exit 127
        }
    done
}

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

# The client as root over the socket, tab-separated output without headers.
sql() { "$MARIADB" --no-defaults --socket="$SRV/mysqld.sock" -uroot --batch --skip-column-names "$@"; }

# start_server DATADIR LOG_BIN MAX_BINLOG_SIZE
# Initialises DATADIR and starts a ROW-format server (FULL image and metadata) writing its
# binlogs to LOG_BIN.NNNNNN, tuned for bulk loading (no syncs); returns once it answers.
start_server() {
    local datadir=$1 logbin=$2 maxsize=$3 port i
    port=$(free_port) || return 1
    log "initialising a private data directory in $datadir"
    "$MARIADB_INSTALL_DB" --no-defaults --datadir="$datadir" --user="$(whoami)" \
        --auth-root-authentication-method=normal --skip-test-db >"$SRV/install-db.log" 2>&1 || {
        cat "$SRV/install-db.log" >&2
        return 1
    }
    log "starting $MARIADBD on 127.0.0.1:$port, socket $SRV/mysqld.sock, binlogs $logbin.*"
    "$MARIADBD" --no-defaults --datadir="$datadir" --socket="$SRV/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$SRV/mysqld.pid" \
        --log-error="$SRV/mysqld.err" --user="$(whoami)" \
        --log-bin="$logbin" --server-id=1 --binlog-format=ROW \
        --binlog-row-image=FULL --binlog-row-metadata=FULL --max-binlog-size="$maxsize" \
        --sync-binlog=0 --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
        --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
        --skip-name-resolve --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_general_ci >"$SRV/mysqld.out" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < 240; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the server exited during startup:"
            tail -n 30 "$SRV/mysqld.err" >&2 || true
            return 1
        fi
        sql -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.25
    done
    sql -e 'SELECT 1' >/dev/null
    log "server up: $(sql -e 'SELECT VERSION()')"
}

# Stops the server started by start_server, if it runs: SIGTERM, then SIGKILL after 30 s.
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
