#!/bin/sh
# Seeds the fuzz corpora with the binlog test corpus: every binlog file under
# tests/data/binlogs (oracles and docs skipped; .gz files gunzipped) is copied into
# fuzz/corpus/<target>/ for each target. Safe to re-run: it overwrites the seeds it made.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../tests/data/binlogs"
targets="${*:-binlog_frame binlog_decode}"
for t in $targets; do
    mkdir -p "$here/corpus/$t"
done
n=0
find "$src" -type f ! -name '*.txt' ! -name '*.tsv' ! -name '*.sql' ! -name '*.md' ! -name '*.sh' |
    sort | {
    while IFS= read -r f; do
        rel=${f#"$src"/}
        name=seed-$(printf '%s' "$rel" | tr '/' '_')
        for t in $targets; do
            case "$f" in
                *.gz) gzip -dc "$f" > "$here/corpus/$t/${name%.gz}" ;;
                *) cp "$f" "$here/corpus/$t/$name" ;;
            esac
        done
        n=$((n + 1))
    done
    echo "seeded $n binlog files into: $targets"
}
