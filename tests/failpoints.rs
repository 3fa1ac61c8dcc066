//! Fault injection (feature `failpoints`): after a failed write or sync the store refuses
//! further writes with a typed error, nothing acknowledged is lost, and reopening recovers.

#![cfg(feature = "failpoints")]

use std::path::{Path, PathBuf};

use changetrack::store::{failpoints, ReadFrom};
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, ErrorKind, Store, StoreOptions};

fn records() -> Vec<ChangeRecord> {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    BinlogReader::open(&[f], BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-fail-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn count(store: &Store) -> usize {
    store
        .iter(ReadFrom::Earliest)
        .map(|i| i.count())
        .unwrap_or(0)
}

// Failpoints are process-wide: the scenarios run in one test, one after the other.
#[test]
fn write_sync_and_read_failures_are_typed_and_lose_nothing() {
    let recs = records();
    for (point, name) in [
        (failpoints::BEFORE_WRITE, "before-write"),
        (failpoints::SYNC, "sync"),
    ] {
        let dir = tmp(name);
        {
            let store = Store::open(&dir, StoreOptions::default()).unwrap();
            store.append(&recs[..10], None).unwrap();
            failpoints::arm(point);
            let e = store.append(&recs[10..20], None).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Io, "{e}");
            // Fail-stop: every later write is refused with a typed error.
            let e = store.append(&recs[20..30], None).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Poisoned);
            // Reads go on, and what was acknowledged is there.
            assert!(count(&store) >= 10);
            assert_eq!(store.get(10).unwrap().checkpoint, recs[9].checkpoint);
        }
        let store = Store::open(&dir, StoreOptions::default()).unwrap();
        let n = count(&store);
        // The acknowledged 10 survive; the failed batch is there only if it reached the log
        // (a failed sync), and then whole.
        assert!(n == 10 || n == 20, "{name}: {n}");
        store.append(&recs[n..n + 5], None).unwrap();
        assert_eq!(count(&store), n + 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // EIO in the read path: a scan, a point read and a seek each give a typed `Io` error that
    // names the record and the store, never a silent end or a skipped record; the next read
    // (the disk recovered) returns the record that failed, and the store is unchanged.
    let dir = tmp("read");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let n = 200.min(recs.len());
    store.append(&recs[..n], None).unwrap();
    failpoints::arm(failpoints::READ);
    let mut got = Vec::new();
    let mut err = None;
    for r in store.iter(ReadFrom::Earliest).unwrap() {
        match r {
            Ok(r) => got.push(r),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("the armed read failure reached the reader");
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("Input/output error"), "{msg}");
    assert!(msg.contains(dir.to_str().unwrap()), "{msg}");
    // Everything before the failure is the exact prefix, from seq 1 on.
    assert!(got.len() < n);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.checkpoint, recs[i].checkpoint);
    }
    let failed_at = got.len() as u64 + 1;
    assert!(msg.contains(&format!("record {failed_at}")), "{msg}");
    // The disk recovers: the failed record reads back, and a full scan is whole.
    assert_eq!(
        store.get(failed_at).unwrap().checkpoint,
        recs[failed_at as usize - 1].checkpoint
    );
    assert_eq!(count(&store), n);
    failpoints::arm(failpoints::READ);
    let e = store.get(3).expect_err("a point read fails");
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert_eq!(store.get(3).unwrap().checkpoint, recs[2].checkpoint);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
