//! The examples in other languages, against a store ingested from the corpus:
//! `examples/python/consume.py` (ctypes + fastavro) prints the same records as `changetrack
//! dump`, and `examples/c/tail.c` builds with `-Wall -Wextra -Werror` and prints every record.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::lib_dir;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn store(name: &str) -> (PathBuf, ct::Store) {
    let dir = std::env::temp_dir().join(format!("ct-examples-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let st = ct::Store::open(&dir, ct::StoreOptions::default()).unwrap();
    let files: Vec<PathBuf> = (1..=3)
        .map(|n| {
            root().join(format!(
                "tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
            ))
        })
        .collect();
    ct::ingest(
        &st,
        &files,
        &ct::IngestOptions::default(),
        None,
        &mut |_| {},
    )
    .unwrap();
    (dir, st)
}

fn required() -> bool {
    std::env::var_os("CHANGETRACK_REQUIRE_C_TESTS").is_some()
}

#[test]
fn the_python_example_prints_what_dump_prints() {
    let ok = Command::new("python3")
        .args(["-c", "import fastavro"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!required(), "python3 with fastavro is required");
        eprintln!("SKIPPED: python3 with fastavro is not installed");
        return;
    }
    let (dir, st) = store("python");
    let want: Vec<ct::ChangeRecord> = st
        .iter(ct::ReadFrom::Earliest)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(st);
    let out = Command::new("python3")
        .arg(root().join("examples/python/consume.py"))
        .arg(&dir)
        .env("CHANGETRACK_LIB", lib_dir().join("libchangetrack.so"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want.len());
    for (l, r) in lines.iter().zip(&want) {
        assert_eq!(l["seq"], r.seq);
        assert_eq!(l["checkpoint"], r.checkpoint.to_string());
        assert_eq!(l["op"], r.op.as_str());
        if let (Some(db), Some(t)) = (r.database_name(), r.table_name()) {
            if r.op.is_dml() {
                assert_eq!(l["objectName"], format!("{db}.{t}"));
            }
        }
    }
    // Run again: the group committed everything, so nothing is printed.
    let again = Command::new("python3")
        .arg(root().join("examples/python/consume.py"))
        .arg(&dir)
        .env("CHANGETRACK_LIB", lib_dir().join("libchangetrack.so"))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(again.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_c_example_builds_cleanly_and_tails_the_store() {
    if Command::new("gcc").arg("--version").output().is_err() {
        assert!(!required(), "gcc is required");
        eprintln!("SKIPPED: gcc is not installed");
        return;
    }
    let (dir, st) = store("c");
    let n = st.last_seq();
    let id = st
        .groups()
        .unwrap()
        .create("tail", "tail", "Tail_pass1")
        .unwrap();
    drop(st);
    let exe = dir.with_extension("tail");
    let lib = lib_dir();
    let status = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("ffi/include"))
        .arg(root().join("examples/c/tail.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lchangetrack")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(&exe)
        .arg(&dir)
        .args([id.as_str(), "tail", "1"])
        .env("CHANGETRACK_PASSWORD", "Tail_pass1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as u64,
        n
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(&exe);
}
