//! Differential test against the server's own decoder.
//!
//! For every binlog of the four generated MariaDB 10.11 variants, every row that
//! `mariadb-binlog --base64-output=decode-rows --verbose --verbose` printed (the `*.decoded.txt`
//! oracle) must match the row our decoder produces, column by column, in order. Column
//! signedness, BINARY(n)-ness and (with FULL metadata) names come from the second oracle,
//! `*.table-metadata.txt` (`mariadb-binlog --print-table-metadata`), whose table maps line up
//! one to one with the table maps in `*.decoded.txt`.
//!
//! The oracle's parser and the comparison rules are in `tests/support/binlog_oracle.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "support/binlog_oracle.rs"]
mod binlog_oracle;

use binlog_oracle::{check_binlog, FileResult};

const VARIANTS: [&str; 4] = [
    "row-metadata-full",
    "row-metadata-minimal",
    "checksum-none",
    "compressed",
];
const FILES: [&str; 3] = [
    "mariadb-bin.000001",
    "mariadb-bin.000002",
    "mariadb-bin.000003",
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs/mariadb-10.11")
}

fn check_file(variant: &str, file: &str) -> FileResult {
    let dir = corpus_dir().join(variant);
    let read = |name: String| {
        std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{variant}/{name}: {e}"))
    };
    check_binlog(
        &format!("{variant}/{file}"),
        &dir.join(file),
        &read(format!("{file}.decoded.txt")),
        &read(format!("{file}.table-metadata.txt")),
        variant != "row-metadata-minimal",
    )
}

#[test]
fn every_row_matches_mariadb_binlog() {
    let mut report = String::new();
    let mut failures = 0usize;
    let mut summary = String::from(
        "variant/file: rows compared (+ rows expected absent) = row headers; values compared\n",
    );
    for variant in VARIANTS {
        for file in FILES {
            let res = check_file(variant, file);
            let _ = writeln!(
                summary,
                "{variant}/{file}: {} (+{}) = {}; {}",
                res.compared_rows, res.absent_rows, res.headers, res.compared_values
            );
            // The XA transaction rolled back after XA PREPARE is in file 000003 only (one row).
            let want_absent = usize::from(file.ends_with("000003"));
            if res.absent_rows != want_absent {
                res_fail_line(
                    &mut report,
                    &mut failures,
                    variant,
                    file,
                    &format!(
                        "{} rows of a rolled-back XA transaction, expected {want_absent}",
                        res.absent_rows
                    ),
                );
            }
            if res.headers == 0 {
                res_fail_line(
                    &mut report,
                    &mut failures,
                    variant,
                    file,
                    "no rows in decoded.txt",
                );
            }
            if res.compared_rows == 0 || res.compared_rows + res.absent_rows != res.headers {
                res_fail_line(
                    &mut report,
                    &mut failures,
                    variant,
                    file,
                    &format!(
                        "{} rows compared + {} absent != {} printed",
                        res.compared_rows, res.absent_rows, res.headers
                    ),
                );
            }
            for m in &res.mismatches {
                res_fail_line(&mut report, &mut failures, variant, file, m);
            }
            if res.mismatch_count > res.mismatches.len() {
                let _ = writeln!(
                    report,
                    "{variant}/{file}: ... and {} more mismatches",
                    res.mismatch_count - res.mismatches.len()
                );
                failures += res.mismatch_count - res.mismatches.len();
            }
        }
    }
    println!("{summary}");
    assert!(
        failures == 0,
        "{failures} mismatches with mariadb-binlog:\n{report}\n{summary}"
    );
}

fn res_fail_line(report: &mut String, failures: &mut usize, variant: &str, file: &str, msg: &str) {
    *failures += 1;
    let _ = writeln!(report, "{variant}/{file}: {msg}");
}
