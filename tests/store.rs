//! The store through its public API: append, read by seq/checkpoint/time, data range, locking,
//! large-transaction chunks, retention, ingestion resume, bad input, concurrent readers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use changetrack::store::ReadFrom;
use changetrack::{
    ingest, BinlogOptions, BinlogReader, ChangeRecord, ErrorKind, Filter, IngestOptions, Op,
    Retention, Store, StoreOptions, SyncMode,
};

#[path = "support/threads.rs"]
mod threads;
use threads::{no_threads_named, threads_named, StopOnDrop};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs")
        .join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn decode(paths: &[PathBuf]) -> Vec<ChangeRecord> {
    BinlogReader::open(paths, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn full_variant() -> Vec<PathBuf> {
    (1..=3)
        .map(|n| {
            data(&format!(
                "mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
            ))
        })
        .collect()
}

fn dump(store: &Store) -> Vec<ChangeRecord> {
    store
        .iter(ReadFrom::Earliest)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Records as decoded, minus their seq (which the store assigns).
fn strip(v: &[ChangeRecord]) -> Vec<ChangeRecord> {
    v.iter()
        .map(|r| ChangeRecord {
            seq: 0,
            ..r.clone()
        })
        .collect()
}

#[test]
fn ingest_stores_exactly_the_decoded_stream_and_resumes_without_duplicates() {
    let dir = tmp("ingest");
    let files = full_variant();
    let want = decode(&files);
    {
        let store = Store::open(&dir, StoreOptions::default()).unwrap();
        // First only file 1, then all three: the second run resumes.
        let s1 = ingest(
            &store,
            &files[..1],
            &IngestOptions::default(),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert!(s1.records > 0);
        let s2 = ingest(&store, &files, &IngestOptions::default(), None, &mut |_| {}).unwrap();
        assert!(s2.records > 0);
        // A third run adds nothing.
        let s3 = ingest(&store, &files, &IngestOptions::default(), None, &mut |_| {}).unwrap();
        assert_eq!(s3.records, 0);
    }
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let got = dump(&store);
    assert_eq!(strip(&got), strip(&want));
    // Sequence numbers are dense from 1.
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(store.get(r.seq).unwrap(), *r);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_by_checkpoint_and_time_and_range() {
    let dir = tmp("reads");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    ingest(
        &store,
        &full_variant(),
        &IngestOptions::default(),
        None,
        &mut |_| {},
    )
    .unwrap();
    let all = dump(&store);
    let range = store.data_range().unwrap().unwrap();
    assert_eq!(range.oldest.seq, 1);
    assert_eq!(range.newest.seq, all.len() as u64);
    assert_eq!(range.newest.checkpoint, all.last().unwrap().checkpoint);
    // From a checkpoint: the first record at or after it.
    for r in all.iter().step_by(37) {
        let first = store
            .iter(ReadFrom::Checkpoint(r.checkpoint))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let expect = all.iter().find(|x| x.checkpoint >= r.checkpoint).unwrap();
        assert_eq!(first.seq, expect.seq);
    }
    // From a time: the first record by which the timestamps reached it.
    let t = all[all.len() / 2].timestamp;
    let first = store
        .iter(ReadFrom::Timestamp(t))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut max = 0;
    let expect = all.iter().find(|x| {
        max = max.max(x.timestamp);
        max >= t
    });
    assert_eq!(first.seq, expect.unwrap().seq);
    // Below the range: a typed error that states the range; no silent jump.
    let e = store
        .iter(ReadFrom::Timestamp(range.oldest.timestamp - 1))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert!(e.to_string().contains("seq 1.."), "{e}");
    assert_eq!(store.get(0).err().unwrap().kind(), ErrorKind::OutOfRange);
    assert_eq!(
        store.get(range.newest.seq + 1).err().unwrap().kind(),
        ErrorKind::OutOfRange
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_writer_is_locked_out_and_readers_follow() {
    let dir = tmp("lock");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let e = Store::open(&dir, StoreOptions::default()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Locked);
    // A reader opened before ingestion catches up with `refresh`.
    let reader = Store::open(
        &dir,
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    ingest(
        &store,
        &full_variant()[..1],
        &IngestOptions::default(),
        None,
        &mut |_| {},
    )
    .unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.last_seq(), store.last_seq());
    assert_eq!(dump(&reader), dump(&store));
    drop(store);
    // After the writer closes, another can open.
    Store::open(&dir, StoreOptions::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn uncommitted_chunks_are_invisible_and_removed_on_reopen() {
    let dir = tmp("chunks");
    let recs = decode(&full_variant()[1..2]);
    let opts = StoreOptions {
        chunk_records: 10,
        ..StoreOptions::default()
    };
    {
        let store = Store::open(&dir, opts.clone()).unwrap();
        store.append(&recs[..5], None).unwrap();
        let mut w = store.begin().unwrap();
        for r in &recs[5..200] {
            w.push(r).unwrap();
        }
        // Chunks were written, but readers see only the committed transaction.
        assert_eq!(store.last_seq(), 5);
        assert_eq!(dump(&store).len(), 5);
        // The writer is dropped without commit: as if the process died here.
    }
    let store = Store::open(&dir, opts).unwrap();
    assert_eq!(store.last_seq(), 5);
    assert_eq!(dump(&store).len(), 5);
    let (a, b) = store.append(&recs[5..8], None).unwrap();
    assert_eq!((a, b), (6, 8));
    assert_eq!(strip(&dump(&store)), strip(&recs[..8]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn retention_trims_whole_transactions_and_moves_the_range() {
    let dir = tmp("retention");
    let files = full_variant();
    let all = decode(&files);
    let total_bytes = {
        let store = Store::open(&dir, StoreOptions::default()).unwrap();
        ingest(&store, &files, &IngestOptions::default(), None, &mut |_| {}).unwrap();
        store.stats().unwrap().record_bytes
    };
    let opts = StoreOptions {
        retention: Retention {
            max_age: None,
            max_bytes: Some(total_bytes / 3),
        },
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    let removed = store.trim().unwrap();
    assert!(removed > 0);
    let range = store.data_range().unwrap().unwrap();
    assert!(range.oldest.seq > 1);
    let kept = dump(&store);
    // The oldest kept record starts a transaction (BEGIN) or is a standalone DDL.
    assert!(
        matches!(kept[0].op, Op::Begin | Op::Ddl),
        "{:?}",
        kept[0].op
    );
    assert_eq!(strip(&kept), strip(&all[all.len() - kept.len()..]));
    assert!(store.stats().unwrap().record_bytes <= total_bytes / 3 + 200_000);
    // Reads below the range are errors that state it.
    let e = store.iter(ReadFrom::Seq(1)).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert!(
        e.to_string()
            .contains(&format!("seq {}..", range.oldest.seq)),
        "{e}"
    );
    assert_eq!(store.get(1).err().unwrap().kind(), ErrorKind::OutOfRange);
    let e = store
        .iter(ReadFrom::Checkpoint(all[0].checkpoint))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    // By age: everything older than the newest record's time goes, the newest transaction stays.
    drop(store);
    let opts = StoreOptions {
        retention: Retention {
            max_age: Some(Duration::from_secs(0)),
            max_bytes: None,
        },
        ..StoreOptions::default()
    };
    let store = Store::open(&dir, opts).unwrap();
    store.trim().unwrap();
    let kept = dump(&store);
    assert!(!kept.is_empty());
    let newest_ts = all.iter().map(|r| r.timestamp).max().unwrap();
    assert!(kept
        .iter()
        .filter(|r| r.op.is_dml())
        .all(|r| r.timestamp >= newest_ts - 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_file_in_a_directory_stops_ingestion_and_keeps_what_came_before() {
    let dir = tmp("corrupt-src");
    std::fs::create_dir_all(&dir).unwrap();
    let files = full_variant();
    for f in &files {
        std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
    }
    // Corrupt a byte in the middle of file 2.
    let f2 = dir.join("mariadb-bin.000002");
    let mut b = std::fs::read(&f2).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0xff;
    std::fs::write(&f2, &b).unwrap();
    let sdir = tmp("corrupt-store");
    let store = Store::open(&sdir, StoreOptions::default()).unwrap();
    let e = ingest(
        &store,
        std::slice::from_ref(&dir),
        &IngestOptions::default(),
        None,
        &mut |_| {},
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Corruption);
    assert_eq!(e.location().file.as_deref(), Some(f2.as_path()));
    assert!(e.location().offset.is_some());
    // File 1 and the transactions of file 2 before the bad event are stored and readable.
    let got = dump(&store);
    let one = decode(&files[..1]);
    assert!(got.len() > one.len());
    assert_eq!(strip(&got[..one.len()]), strip(&one));
    assert_eq!(got.last().unwrap().op, Op::Commit);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&sdir).unwrap();
}

#[test]
fn filters_track_only_what_is_asked() {
    let dir = tmp("filter");
    let store = Store::open(
        &dir,
        StoreOptions {
            sync: SyncMode::Never,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let opts = IngestOptions {
        filter: Some(
            Filter::default()
                .with_tables("corpus.t_int")
                .unwrap()
                .with_types("dml")
                .unwrap(),
        ),
        ..IngestOptions::default()
    };
    ingest(&store, &full_variant(), &opts, None, &mut |_| {}).unwrap();
    let got = dump(&store);
    assert!(got.iter().any(|r| r.op.is_dml()));
    for r in &got {
        match r.op {
            Op::Insert | Op::Update | Op::Delete => assert_eq!(r.table_name(), Some("t_int")),
            Op::Begin | Op::Commit => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn readers_never_see_a_torn_transaction() {
    let dir = tmp("concurrent");
    let store = Store::open(
        &dir,
        StoreOptions {
            sync: SyncMode::Never,
            chunk_records: 50,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let files = full_variant();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut checks = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || checks < 3 {
                let recs: Vec<ChangeRecord> = store
                    .iter(ReadFrom::Earliest)
                    .map(|i| i.collect::<Result<_, _>>().unwrap())
                    .unwrap_or_default();
                let mut open = false;
                for r in &recs {
                    match r.op {
                        Op::Begin => open = true,
                        Op::Commit => open = false,
                        _ => {}
                    }
                }
                assert!(!open, "a reader saw a transaction without its COMMIT");
                checks += 1;
            }
            checks
        });
        for f in &files {
            ingest(
                &store,
                std::slice::from_ref(f),
                &IngestOptions {
                    batch_records: 1,
                    ..IngestOptions::default()
                },
                None,
                &mut |_| {},
            )
            .unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() >= 3);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn follow_mode_tails_a_growing_file_and_new_files() {
    let src = tmp("follow-src");
    std::fs::create_dir_all(&src).unwrap();
    let files = full_variant();
    let f1 = std::fs::read(&files[0]).unwrap();
    // Start with file 1 cut in the middle of an event.
    let cut = f1.len() / 2 + 3;
    std::fs::write(src.join("mariadb-bin.000001"), &f1[..cut]).unwrap();
    let sdir = tmp("follow-store");
    let store = Store::open(
        &sdir,
        StoreOptions {
            sync: SyncMode::Never,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let want = decode(&files[..2]);
    let stop: changetrack::ingest::StopFlag =
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|s| {
        let _stop_on_panic = StopOnDrop(std::sync::Arc::clone(&stop));
        let t = s.spawn(|| {
            let opts = IngestOptions {
                follow: true,
                heartbeat_interval: None,
                ..IngestOptions::default()
            };
            ingest(
                &store,
                std::slice::from_ref(&src),
                &opts,
                Some(&stop),
                &mut |_| {},
            )
            .unwrap()
        });
        let wait_for = |n: u64| {
            let start = std::time::Instant::now();
            while store.last_seq() < n {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "follow mode stalled at {} of {n}",
                    store.last_seq()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            start.elapsed()
        };
        std::thread::sleep(Duration::from_millis(50));
        // The server finishes writing file 1, then rotates to file 2.
        std::fs::write(src.join("mariadb-bin.000001"), &f1).unwrap();
        let n1 = decode(&files[..1]).len() as u64;
        let lat1 = wait_for(n1);
        std::fs::copy(&files[1], src.join("mariadb-bin.000002")).unwrap();
        let lat2 = wait_for(want.len() as u64);
        eprintln!("visible after {lat1:?} (rest of file 1) and {lat2:?} (new file 2)");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        t.join().unwrap();
    });
    assert_eq!(strip(&dump(&store)), strip(&want));
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_dir_all(&sdir).unwrap();
}

#[test]
fn an_abandoned_writer_does_not_leave_dictionary_ids_behind() {
    let dir = tmp("abandon");
    let recs = decode(&full_variant()[..1]);
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    {
        // New tables are assigned ids in this writer, which is then dropped without commit.
        let mut w = store.begin().unwrap();
        for r in &recs {
            w.push(r).unwrap();
        }
    }
    store.append(&recs, None).unwrap();
    drop(store);
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    assert_eq!(strip(&dump(&store)), strip(&recs));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn long_scans_read_ahead_on_a_thread_and_return_what_a_plain_scan_returns() {
    let dir = tmp("read-ahead");
    let base = strip(&decode(&full_variant()));
    let passes: u32 = 40;
    // The corpus 40 times over (about 34k records), each pass in its own files.
    let pass = |p: u32| -> Vec<ChangeRecord> {
        base.iter()
            .map(|r| {
                let mut r = r.clone();
                r.checkpoint.file_index += 10 * p;
                r.safe_checkpoint.file_index += 10 * p;
                r
            })
            .collect()
    };
    {
        let store = Store::open(
            &dir,
            StoreOptions {
                sync: SyncMode::Never,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        for p in 0..passes {
            store.append(&pass(p), None).unwrap();
        }
    }
    let open = |ahead: bool| {
        Store::open(
            &dir,
            StoreOptions {
                read_ahead_thread: ahead,
                ..StoreOptions::default()
            },
        )
        .unwrap()
    };
    let plain = dump(&open(false));
    let want: Vec<ChangeRecord> = (0..passes).flat_map(pass).collect();
    assert_eq!(strip(&plain), want);
    for (i, r) in plain.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }

    let store = open(true);
    // Whole, with the thread observed while it runs.
    let mut it = store.iter(ReadFrom::Earliest).unwrap();
    let head: Vec<ChangeRecord> = it.by_ref().take(10_000).map(Result::unwrap).collect();
    assert_eq!(threads_named("changetrack-rea"), 1);
    let rest: Vec<ChangeRecord> = it.map(Result::unwrap).collect();
    assert_eq!(head.len() + rest.len(), plain.len());
    assert_eq!(head[..], plain[..10_000]);
    assert_eq!(rest[..], plain[10_000..]);
    // From the middle, and dropped part way: dropping the iterator stops its thread.
    for from in [2u64, 5_000, 20_001] {
        let start = usize::try_from(from).unwrap() - 1;
        let mut it = store.iter(ReadFrom::Seq(from)).unwrap();
        let got: Vec<ChangeRecord> = it.by_ref().take(9_000).map(Result::unwrap).collect();
        assert_eq!(threads_named("changetrack-rea"), 1);
        assert_eq!(got[..], plain[start..start + 9_000]);
        drop(it);
        assert!(no_threads_named("changetrack-rea"));
    }
    // Fewer than 4096 records left at the switch: no thread, same records.
    let from = u64::try_from(plain.len() - 7_000).unwrap();
    let mut it = store.iter(ReadFrom::Seq(from)).unwrap();
    let got: Vec<ChangeRecord> = it.by_ref().take(5_000).map(Result::unwrap).collect();
    assert!(no_threads_named("changetrack-rea"));
    let more: Vec<ChangeRecord> = it.map(Result::unwrap).collect();
    assert_eq!(got.len() + more.len(), 7_001);
    assert_eq!(more.last(), plain.last());
    drop(store);
    // DTS Avro straight from the stored bytes (`next_avro`), through the RocksDB iterator and
    // then the read-ahead thread, and through `iter_range`: the Avro of each record.
    for ahead in [false, true] {
        let store = open(ahead);
        let mut writer = changetrack::record::avro::AvroWriter::new();
        let mut it = store.iter(ReadFrom::Earliest).unwrap();
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(head) = it.next_avro(&mut writer, &mut out) {
            let head = head.unwrap();
            let want = &plain[n];
            assert_eq!(head.seq, want.seq);
            assert!(head.before.is_none() && head.after.is_none());
            assert!(
                out == changetrack::record::avro::to_avro(want),
                "record {}: Avro from the stored bytes differs",
                want.seq
            );
            out.clear();
            n += 1;
            if n == 10_000 && ahead {
                // Past the switch to a long scan: the read-ahead thread serves the rest.
                assert_eq!(threads_named("changetrack-rea"), 1);
            }
        }
        assert_eq!(n, plain.len());
        if ahead {
            assert!(no_threads_named("changetrack-rea"));
        }
        let got: Vec<ChangeRecord> = store
            .iter_range(1_000, 2_023)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got[..], plain[999..2_023]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_is_read_to_its_end_before_its_successor() {
    // The race: the reader has file 1 up to an event boundary, the server finishes file 1 and
    // creates file 2, and the reader sees file 2. It must not leave file 1 at the old end.
    let src = tmp("successor");
    std::fs::create_dir_all(&src).unwrap();
    let files = full_variant();
    let f1 = std::fs::read(&files[0]).unwrap();
    let cut = event_boundary_after(&f1, f1.len() / 2);
    let first = src.join("mariadb-bin.000001");
    std::fs::write(&first, &f1[..cut]).unwrap();
    let mut reader =
        BinlogReader::open(std::slice::from_ref(&src), BinlogOptions::default()).unwrap();
    let mut got = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        got.push(r);
    }
    // File 2 appears; the look at file 1's length during this refresh still finds the old end,
    // and the rest of file 1 lands right after it.
    std::fs::copy(&files[1], src.join("mariadb-bin.000002")).unwrap();
    assert!(reader.refresh().unwrap());
    std::fs::write(&first, &f1).unwrap();
    while let Some(r) = reader.next_record().unwrap() {
        got.push(r);
    }
    assert_eq!(got, decode(&files[..2]));
    std::fs::remove_dir_all(&src).unwrap();
}

/// The first event boundary at or after `at` in a binlog (event size: bytes 9..13 of an event's
/// header), before its end.
fn event_boundary_after(binlog: &[u8], at: usize) -> usize {
    let mut cut = 4;
    while cut < at {
        cut += u32::from_le_bytes(binlog[cut + 9..cut + 13].try_into().unwrap()) as usize;
    }
    assert!(cut < binlog.len());
    cut
}

fn read_all(reader: &mut BinlogReader, into: &mut Vec<ChangeRecord>) {
    while let Some(r) = reader.next_record().unwrap() {
        into.push(r);
    }
}

#[test]
fn a_purged_file_ends_where_it_was_read_and_a_replaced_one_is_an_error() {
    let files = full_variant();
    // Purged: file 1 was read to its end, then the server wrote file 2 and purged file 1.
    let src = tmp("purged");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(&files[0], src.join("mariadb-bin.000001")).unwrap();
    let mut reader =
        BinlogReader::open(std::slice::from_ref(&src), BinlogOptions::default()).unwrap();
    let mut got = Vec::new();
    read_all(&mut reader, &mut got);
    std::fs::copy(&files[1], src.join("mariadb-bin.000002")).unwrap();
    std::fs::remove_file(src.join("mariadb-bin.000001")).unwrap();
    assert!(reader.refresh().unwrap());
    read_all(&mut reader, &mut got);
    assert_eq!(got, decode(&files[..2]));
    std::fs::remove_dir_all(&src).unwrap();

    // Replaced: another, longer file now has the name of the one being read (RESET MASTER
    // starts over); its bytes are not appended to the old ones.
    let src = tmp("replaced");
    std::fs::create_dir_all(&src).unwrap();
    let f1 = std::fs::read(&files[0]).unwrap();
    let first = src.join("mariadb-bin.000001");
    std::fs::write(&first, &f1[..event_boundary_after(&f1, f1.len() / 2)]).unwrap();
    let mut reader =
        BinlogReader::open(std::slice::from_ref(&src), BinlogOptions::default()).unwrap();
    read_all(&mut reader, &mut Vec::new());
    std::fs::remove_file(&first).unwrap();
    std::fs::copy(&files[1], &first).unwrap();
    let e = reader.refresh().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corruption);
    assert!(e.to_string().contains("replaced"), "{e}");
    std::fs::remove_dir_all(&src).unwrap();
}
