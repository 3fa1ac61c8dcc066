#!/usr/bin/env bash
# Which files of the binlog corpus (tests/data/binlogs/) each peer reads to the end without an
# error, and whether it then found the same row changes and values as the library's
# BinlogReader (examples/binlog_count, the reference, when built): runs every peer on every
# binlog file (gzip files unpacked first) and prints one tab-separated line per file and peer
# (ok / DIFFERS: counts / FAIL: first error line) and a summary per peer. Build the peers first
# (benches/peers/run.sh does).
#
# Environment: CORPUS (default: tests/data/binlogs of this checkout), PEERS_TARGET_DIR,
# PEERS_BIN_DIR, JAVA, BINLOG_COUNT_BIN (as in run.sh), TIMEOUT=30 (seconds per file and peer).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CORPUS=${CORPUS:-$HERE/../../tests/data/binlogs}
PEERS_TARGET_DIR=${PEERS_TARGET_DIR:-$HOME/.cache/ct-peers-target}
PEERS_BIN_DIR=${PEERS_BIN_DIR:-$HOME/.cache/ct-peers-bin}
JAVA=${JAVA:-java}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/changetrack-target}
BINLOG_COUNT_BIN=${BINLOG_COUNT_BIN:-$CARGO_TARGET_DIR/release/examples/binlog_count}
TIMEOUT=${TIMEOUT:-30}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cp="$HERE/java/target/classes:$(cat "$HERE/java/target/classpath.txt")"
peers=(go-mysql binlog-connector-java mysql_cdc binlog-connector-rust)
run_peer() {
    case $1 in
        go-mysql) "$PEERS_BIN_DIR/gomysql-count" "$2" ;;
        binlog-connector-java) "$JAVA" -cp "$cp" peers.BinlogCount "$2" ;;
        mysql_cdc) "$PEERS_TARGET_DIR/release/mysql_cdc_count" "$2" ;;
        binlog-connector-rust) "$PEERS_TARGET_DIR/release/binlog_connector_rust_count" "$2" ;;
    esac
}

declare -A ok=() total=() differs=()
ref_ok=0 ref_total=0
while IFS= read -r rel; do
    f=$CORPUS/$rel
    if [[ "$f" == *.gz ]]; then
        gunzip -c "$f" >"$TMP/unpacked"
        f=$TMP/unpacked
    fi
    # Binlog files only (magic fe 62 69 6e).
    [[ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" == fe62696e ]] || continue
    # The reference: the row changes and values the library finds ("rows N values N").
    ref=""
    if [[ -x "$BINLOG_COUNT_BIN" ]]; then
        ref_total=$((ref_total + 1))
        if out=$(timeout "$TIMEOUT" "$BINLOG_COUNT_BIN" "$f" 2>&1); then
            ref_ok=$((ref_ok + 1))
            ref=$(tail -n 1 <<<"$out" | sed 's/^records [0-9]* //')
            printf '%s\t%s\tok\t%s\n' "$rel" binlog_count "$(tail -n 1 <<<"$out")"
        else
            printf '%s\t%s\tFAIL\t%s\n' "$rel" binlog_count "$(tail -n 1 <<<"$out" | cut -c1-200)"
        fi
    fi
    for p in "${peers[@]}"; do
        total[$p]=$((${total[$p]:-0} + 1))
        if out=$(timeout "$TIMEOUT" bash -c "$(declare -f run_peer); cp='$cp'; PEERS_BIN_DIR='$PEERS_BIN_DIR'; PEERS_TARGET_DIR='$PEERS_TARGET_DIR'; JAVA='$JAVA'; run_peer $p '$f'" 2>&1); then
            ok[$p]=$((${ok[$p]:-0} + 1))
            counts=$(tail -n 1 <<<"$out")
            if [[ -n "$ref" && "${counts#records * }" != "$ref" ]]; then
                differs[$p]=$((${differs[$p]:-0} + 1))
                printf '%s\t%s\tDIFFERS\t%s (binlog_count: %s)\n' "$rel" "$p" "$counts" "$ref"
            else
                printf '%s\t%s\tok\t%s\n' "$rel" "$p" "$counts"
            fi
        else
            printf '%s\t%s\tFAIL\t%s\n' "$rel" "$p" "$(grep -m 1 -i 'error\|exception\|panic' <<<"$out" | cut -c1-200)"
        fi
    done
done < <(cd "$CORPUS" && find . -type f | sed 's|^\./||' | sort)
echo
((ref_total)) && echo "binlog_count (reference): $ref_ok of $ref_total binlog files read without error"
for p in "${peers[@]}"; do
    echo "$p: ${ok[$p]:-0} of ${total[$p]:-0} binlog files read without error$( ((ref_total)) && echo ", of which ${differs[$p]:-0} with other row/value counts than binlog_count")"
done
