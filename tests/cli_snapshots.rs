//! Snapshots of the CLI's viewing output: `query` (table and jsonl) and `show` (a row change
//! and a DDL statement), on a store ingested from the corpus. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test --test cli_snapshots` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "changetrack {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check(name: &str, got: &str) {
    let path = root().join("tests/data/golden/cli").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(got, want, "{name} differs from {}", path.display());
}

#[test]
fn query_and_show_output() {
    let store: PathBuf = std::env::temp_dir().join(format!("ct-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let s = store.to_str().unwrap();
    let src = root().join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    run(&[
        "ingest",
        "--store",
        s,
        "--sync",
        "never",
        src.to_str().unwrap(),
    ]);

    check(
        "query-default.txt",
        &run(&["query", "--store", s, "--format", "table"]),
    );
    check(
        "query-table-where.txt",
        &run(&[
            "query",
            "--store",
            s,
            "--format",
            "table",
            "--table",
            "corpus.t_int",
            "--type",
            "UPDATE,DELETE",
            "--where",
            "before.pk >= 2",
            "--from-time",
            "0",
            "--oldest-first",
            "--limit",
            "5",
        ]),
    );
    check(
        "query-ddl.txt",
        &run(&[
            "query",
            "--store",
            s,
            "--format",
            "table",
            "--type",
            "DDL",
            "--from-time",
            "0",
            "--limit",
            "6",
        ]),
    );
    check(
        "query.jsonl",
        &run(&["query", "--store", s, "--format", "jsonl", "--limit", "2"]),
    );
    // `show` of the newest UPDATE and of a DDL statement, found through the query.
    let seq_of = |ty: &str| -> String {
        let line = run(&[
            "query",
            "--store",
            s,
            "--format",
            "jsonl",
            "--type",
            ty,
            "--from-time",
            "0",
            "--limit",
            "1",
        ]);
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        v["seq"].to_string()
    };
    check(
        "show-update.txt",
        &run(&["show", "--store", s, &seq_of("UPDATE")]),
    );
    check(
        "show-ddl.txt",
        &run(&["show", "--store", s, &seq_of("DDL")]),
    );
    // Every record at a checkpoint (a rows event with several rows).
    let first_update = run(&[
        "query",
        "--store",
        s,
        "--format",
        "jsonl",
        "--type",
        "UPDATE",
        "--from-time",
        "0",
        "--oldest-first",
        "--limit",
        "1",
    ]);
    let v: serde_json::Value = serde_json::from_str(first_update.trim()).unwrap();
    check(
        "show-checkpoint.txt",
        &run(&["show", "--store", s, v["checkpoint"].as_str().unwrap()]),
    );
    std::fs::remove_dir_all(&store).unwrap();
}
