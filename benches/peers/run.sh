#!/usr/bin/env bash
# changetrack side by side with the peers' binlog decoders, in one run, on one binlog file.
#
# Times, as medians of RUNS alternating runs (one untimed warm-up run of each first):
#   - changetrack decode --format jsonl|avro|text FILE   (stdout to /dev/null)
#   - the library's BinlogReader with no output          (examples/binlog_count FILE)
#   - mariadb-binlog --no-defaults --base64-output=decode-rows -v FILE   (stdout to /dev/null)
#   - the peers (benches/peers/), each decoding every row value and printing only counts:
#       go-mysql                     replication.NewBinlogParser().ParseFile   (go/)
#       mysql-binlog-connector-java  BinaryLogFileReader                       (java/)
#       mysql_cdc                    binlog_reader::BinlogReader               (rust/)
#       mysql-binlog-connector-rust  binlog_parser::BinlogParser               (rust/)
# and prints a markdown table: rows/s, median seconds (wall), median CPU seconds (user + system,
# from GNU time when installed), and the time ratios to mariadb-binlog and to the fastest peer
# (wall over wall; lower is faster). What each peer decodes: benches/peers/RESULTS.md.
#
# Usage:
#   benches/peers/run.sh FILE        # time on an existing binlog file
#   benches/peers/run.sh             # SHAPE's file in DATA_DIR, generated first if missing
#
# Environment:
#   RUNS=5            timed runs of each tool (alternating)
#   SHAPE=txn100      bulk | txn100 | txn1 (see benches/decode_vs_mariadb_binlog.sh; ROWS is passed on)
#   DATA_DIR          where generated binlogs are kept: default $HOME/.cache/ct-peers-data
#   CARGO_TARGET_DIR  changetrack's target dir: default $HOME/.cache/changetrack-target
#   CHANGETRACK_BIN   default $CARGO_TARGET_DIR/release/changetrack
#   BINLOG_COUNT_BIN  default $CARGO_TARGET_DIR/release/examples/binlog_count
#   PEERS_TARGET_DIR  the Rust peers' own target dir: default $HOME/.cache/ct-peers-target
#   PEERS_BIN_DIR     where the Go peer is built: default $HOME/.cache/ct-peers-bin
#   GOMODCACHE        default $HOME/.cache/gomod
#   BUILD_PEERS=1     build the peers first (go build, mvn package, cargo build --release on
#                     benches/peers/rust only; never on the changetrack workspace); 0 to skip
#   MARIADB_BINLOG    default mariadb-binlog
#   JAVA              default java
#   ONLY              space-separated tool keys to time (default all): ct-jsonl ct-avro ct-text
#                     ct-reader mariadb-binlog go-mysql go-mysql-nocrc binlog-connector-java
#                     mysql_cdc binlog-connector-rust
#
# A tool that is missing or fails its warm-up run is reported and left out of the table.
set -euo pipefail

RUNS=${RUNS:-5}
SHAPE=${SHAPE:-txn100}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DATA_DIR=${DATA_DIR:-$HOME/.cache/ct-peers-data}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/changetrack-target}
CHANGETRACK_BIN=${CHANGETRACK_BIN:-$CARGO_TARGET_DIR/release/changetrack}
BINLOG_COUNT_BIN=${BINLOG_COUNT_BIN:-$CARGO_TARGET_DIR/release/examples/binlog_count}
PEERS_TARGET_DIR=${PEERS_TARGET_DIR:-$HOME/.cache/ct-peers-target}
PEERS_BIN_DIR=${PEERS_BIN_DIR:-$HOME/.cache/ct-peers-bin}
export GOMODCACHE=${GOMODCACHE:-$HOME/.cache/gomod}
BUILD_PEERS=${BUILD_PEERS:-1}
MARIADB_BINLOG=${MARIADB_BINLOG:-mariadb-binlog}
JAVA=${JAVA:-java}
ONLY=${ONLY:-}

log() { printf '%s\n' "$*" >&2; }

build_peers() {
    log "building the peers"
    mkdir -p "$PEERS_BIN_DIR"
    if command -v go >/dev/null; then
        (cd "$HERE/go" && go build -o "$PEERS_BIN_DIR/gomysql-count" .) || log "go-mysql peer: build failed"
    else
        log "go not found: go-mysql peer skipped"
    fi
    if command -v mvn >/dev/null; then
        (cd "$HERE/java" && mvn -q -B package -DskipTests) || log "java peer: build failed"
    else
        log "mvn not found: java peer skipped"
    fi
    if command -v cargo >/dev/null; then
        (cd "$HERE/rust" && CARGO_TARGET_DIR=$PEERS_TARGET_DIR cargo build --release --quiet) ||
            log "rust peers: build failed"
    else
        log "cargo not found: rust peers skipped"
    fi
}

# Versions, for the table.
v_go_mysql() { awk '$1 == "require" && $2 ~ /go-mysql-org\/go-mysql$/ { print $3 } $1 ~ /go-mysql-org\/go-mysql$/ { print $2 }' "$HERE/go/go.mod" | head -n 1; }
v_java() { sed -n 's:.*<connector.version>\(.*\)</connector.version>.*:\1:p' "$HERE/java/pom.xml"; }
v_crate() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$HERE/rust/Cargo.lock"; }

KEYS=()
declare -A NAME=() CMD=() VERSION=() PEER=()
add_tool() { # key name version is_peer command...
    local key=$1 name=$2 version=$3 peer=$4
    shift 4
    if [[ -n "$ONLY" && " $ONLY " != *" $key "* ]]; then
        return 0
    fi
    KEYS+=("$key")
    NAME[$key]=$name
    VERSION[$key]=$version
    PEER[$key]=$peer
    CMD[$key]=$(printf '%q ' "$@")
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# "wall cpu": seconds taken by a command line (stdout to /dev/null, stderr kept for errors),
# and its CPU seconds (user + system, children included) where GNU time is installed.
TIME_BIN=$(command -v /usr/bin/time || true)
time_cmd() {
    local start end cpu=nan
    if [[ -n "$TIME_BIN" ]]; then
        start=$EPOCHREALTIME
        eval "$TIME_BIN -o $(printf %q "$TIME_OUT") -f '%U %S' $1" >/dev/null
        end=$EPOCHREALTIME
        cpu=$(awk 'END { printf "%.6f", $1 + $2 }' "$TIME_OUT")
    else
        start=$EPOCHREALTIME
        eval "$1" >/dev/null
        end=$EPOCHREALTIME
    fi
    awk -v a="$start" -v b="$end" -v c="$cpu" 'BEGIN { printf "%.6f %s\n", b - a, c }'
}

main() {
    local binlog shape=""
    if [[ $# -ge 1 ]]; then
        binlog=$1
    else
        shape="SHAPE=$SHAPE${ROWS:+ ROWS=$ROWS}"
        mkdir -p "$DATA_DIR"
        binlog=$DATA_DIR/$SHAPE${ROWS:+-$ROWS}.bin
        if [[ ! -f "$binlog" ]]; then
            log "generating $binlog (SHAPE=$SHAPE${ROWS:+ ROWS=$ROWS})"
            SHAPE=$SHAPE bash "$REPO/benches/decode_vs_mariadb_binlog.sh" --generate "$binlog.tmp"
            mv "$binlog.tmp" "$binlog"
        fi
    fi
    [[ -f "$binlog" ]] || { log "no such file: $binlog"; return 1; }

    [[ "$BUILD_PEERS" == 1 ]] && build_peers >&2

    local ct_version="" mb_version="" f
    [[ -x "$CHANGETRACK_BIN" ]] && ct_version=$("$CHANGETRACK_BIN" --version 2>/dev/null | head -n 1 || true)
    if command -v "$MARIADB_BINLOG" >/dev/null; then
        # "Ver 3.5", and the package's version where dpkg knows the program (MariaDB's release).
        mb_version=$("$MARIADB_BINLOG" --version | head -n 1 | sed -n 's/.* Ver \([^ ]*\).*/\1/p')
        local pkg
        pkg=$(dpkg -S "$(readlink -f "$(command -v "$MARIADB_BINLOG")")" 2>/dev/null | cut -d: -f1 || true)
        [[ -n "$pkg" ]] && mb_version="$mb_version ($pkg $(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null))"
    fi

    for f in jsonl avro text; do
        add_tool "ct-$f" "changetrack \`decode --format $f\`" "$ct_version" 0 "$CHANGETRACK_BIN" --quiet decode --format "$f" "$binlog"
    done
    add_tool ct-reader "changetrack \`BinlogReader\` (examples/binlog_count)" "$ct_version" 0 "$BINLOG_COUNT_BIN" "$binlog"
    add_tool mariadb-binlog "\`mariadb-binlog --base64-output=decode-rows -v\`" "$mb_version" 0 \
        "$MARIADB_BINLOG" --no-defaults --base64-output=decode-rows -v "$binlog"
    add_tool go-mysql "go-mysql \`ParseFile\`" "$(v_go_mysql)" 1 "$PEERS_BIN_DIR/gomysql-count" "$binlog"
    add_tool go-mysql-nocrc "go-mysql \`ParseFile\`, CRC32 not verified" "$(v_go_mysql)" 1 \
        "$PEERS_BIN_DIR/gomysql-count" -verify-checksum=false "$binlog"
    local cp=""
    [[ -f "$HERE/java/target/classpath.txt" ]] && cp="$HERE/java/target/classes:$(cat "$HERE/java/target/classpath.txt")"
    add_tool binlog-connector-java "mysql-binlog-connector-java \`BinaryLogFileReader\`" "$(v_java)" 1 \
        "$JAVA" -cp "$cp" peers.BinlogCount "$binlog"
    add_tool mysql_cdc "mysql_cdc \`BinlogReader\`" "$(v_crate mysql_cdc)" 1 "$PEERS_TARGET_DIR/release/mysql_cdc_count" "$binlog"
    add_tool binlog-connector-rust "mysql-binlog-connector-rust \`BinlogParser\`" "$(v_crate mysql-binlog-connector-rust)" 1 \
        "$PEERS_TARGET_DIR/release/binlog_connector_rust_count" "$binlog"

    local size
    size=$(stat -c %s "$binlog")
    log "binlog: $binlog ($size bytes)"

    # Warm-up: each tool once, untimed; its counts line (the peers' and binlog_count's) kept.
    local k out active=() failed=()
    declare -A COUNTS=()
    for k in "${KEYS[@]}"; do
        log "warm-up: ${NAME[$k]}"
        if out=$(eval "${CMD[$k]}" 2>"$DATA_DIR/.err.$$" | tail -c 4096 | tail -n 1); then
            active+=("$k")
            [[ "$out" == records* ]] && COUNTS[$k]=$out
        else
            failed+=("$k: $(tail -n 1 "$DATA_DIR/.err.$$" 2>/dev/null || echo failed)")
        fi
    done
    rm -f "$DATA_DIR/.err.$$"

    # The row changes in the file: the library's count, else changetrack's --stats, else a peer's.
    local rows=""
    [[ -n "${COUNTS[ct-reader]:-}" ]] && rows=$(awk '{ print $4 }' <<<"${COUNTS[ct-reader]}")
    if [[ -z "$rows" && -x "$CHANGETRACK_BIN" ]]; then
        rows=$("$CHANGETRACK_BIN" --quiet decode --stats --format jsonl "$binlog" 2>&1 >/dev/null | tail -n 1 |
            sed -n 's/.*(\([0-9]*\) rows).*/\1/p')
    fi
    if [[ -z "$rows" ]]; then
        for k in "${active[@]}"; do
            [[ -n "${COUNTS[$k]:-}" ]] && { rows=$(awk '{ print $4 }' <<<"${COUNTS[$k]}"); break; }
        done
    fi
    rows=${rows:-0}

    # Timed runs, alternating: every tool once per run.
    local i t c load_before load_after
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    TIME_OUT=$(mktemp)
    declare -A TIMES=() CPUS=()
    for ((i = 1; i <= RUNS; i++)); do
        for k in "${active[@]}"; do
            read -r t c < <(time_cmd "${CMD[$k]}")
            TIMES[$k]+="$t "
            CPUS[$k]+="$c "
            log "$(printf 'run %d: %-24s %8.3f s  (cpu %s s)' "$i" "$k" "$t" "$c")"
        done
    done
    rm -f "$TIME_OUT"
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)

    declare -A MED=() CPU=()
    local best_peer="" mb=""
    for k in "${active[@]}"; do
        MED[$k]=$(tr ' ' '\n' <<<"${TIMES[$k]}" | sed '/^$/d' | median)
        CPU[$k]=$(tr ' ' '\n' <<<"${CPUS[$k]}" | sed '/^$/d' | median)
        if [[ "${PEER[$k]}" == 1 ]] && { [[ -z "$best_peer" ]] || awk -v a="${MED[$k]}" -v b="${MED[$best_peer]}" 'BEGIN { exit !(a < b) }'; }; then
            best_peer=$k
        fi
    done
    [[ -n "${MED[mariadb-binlog]:-}" ]] && mb=${MED[mariadb-binlog]}

    echo "Binlog: \`$(basename "$binlog")\`, $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB), $rows row changes${shape:+ ($shape)}."
    echo "Medians of $RUNS alternating runs (one warm-up each); $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $load_before before the timed runs, $load_after after."
    echo "Ratios are time over time: lower is faster (0.33 = 3x faster)."
    echo
    echo "| decoder | version | rows/s | seconds (median) | CPU s (median) | ÷ mariadb-binlog | ÷ fastest peer | counts (records rows values) |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    for k in "${active[@]}"; do
        awk -v n="${NAME[$k]}" -v v="${VERSION[$k]}" -v t="${MED[$k]}" -v cpu="${CPU[$k]}" -v r="$rows" -v m="$mb" \
            -v p="${best_peer:+${MED[$best_peer]}}" -v c="${COUNTS[$k]:-}" -v star="$([[ $k == "$best_peer" ]] && echo ' (fastest peer)')" 'BEGIN {
            sub(/^records /, "", c); sub(/ rows /, " ", c); sub(/ values /, " ", c)
            printf "| %s%s | %s | %.0f | %.3f | %s | %s | %s | %s |\n", n, star, v, r / t, t,
                (cpu == "nan" ? "-" : sprintf("%.2f", cpu)),
                (m == "" ? "-" : sprintf("%.2f", t / m)), (p == "" ? "-" : sprintf("%.2f", t / p)), c
        }'
    done
    if ((${#failed[@]})); then
        echo
        for k in "${failed[@]}"; do echo "- not timed: $k"; done
    fi
    echo
}

main "$@"
