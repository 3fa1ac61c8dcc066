//! Every binlog of the corpus (tests/data/binlogs, see its MANIFEST.md) goes through the decoder
//! without a panic: it decodes completely, or (for the files that are truncated, corrupt or of an
//! unsupported format by design) ends in the typed error listed here.
//!
//! A summary per file (record counts per operation and a hash of the JSON lines) is compared with
//! `tests/data/golden/corpus-summary.txt`; regenerate it with `UPDATE_GOLDEN=1 cargo test --test
//! corpus` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use changetrack::record::json;
use changetrack::{BinlogOptions, BinlogReader, ErrorKind};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs")
}

/// Binlog files of the corpus (everything that is not an oracle, script or manifest).
fn corpus_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let skip = [".txt", ".tsv", ".sql", ".md", ".sh"]
                    .iter()
                    .any(|s| name.ends_with(s));
                if !skip {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&corpus_root(), &mut out);
    out
}

/// Files that end in a typed error by design, with the error kind and the offset it names.
fn expected_errors() -> BTreeMap<&'static str, (ErrorKind, u64)> {
    BTreeMap::from([
        // A stray byte after the last event (copied while open): an incomplete tail.
        ("mysql/MyFlash/haha.000005", (ErrorKind::Incomplete, 3283)),
        ("mysql/MyFlash/haha.000007", (ErrorKind::Incomplete, 416)),
        // Intentionally truncated upstream.
        (
            "mysql/rust_mysql_common/binlog_truncated_event.000001",
            (ErrorKind::Incomplete, 4),
        ),
        (
            "mysql/rust_mysql_common/binlog_truncated_prev_gtid_event.000001",
            (ErrorKind::Incomplete, 120),
        ),
        // A relay log with a damaged QUERY event near the end (mariadb-binlog rejects it too).
        (
            "mysql/rust_mysql_common/corrupt-relay-bin.000624",
            (ErrorKind::Corruption, 91204),
        ),
        // Pre-GA row events from a MySQL 5.2 development tree.
        (
            "mysql/rust_mysql_common/ver_5_1-wl2325_s.001",
            (ErrorKind::Unsupported, 411),
        ),
    ])
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

#[test]
fn whole_corpus_decodes_or_fails_typed() {
    let root = corpus_root();
    let expected = expected_errors();
    let mut summary = String::new();
    let mut seen_errors = 0;
    let mut total_rows = 0u64;
    for path in corpus_files() {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let mut reader = BinlogReader::open(std::slice::from_ref(&path), BinlogOptions::default())
            .unwrap_or_else(|e| panic!("{rel}: cannot open: {e}"));
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        let mut line = String::new();
        let mut error = None;
        for rec in &mut reader {
            match rec {
                Ok(rec) => {
                    *counts.entry(rec.op.as_str()).or_default() += 1;
                    line.clear();
                    json::push_record(&mut line, &rec, false);
                    fnv(&mut hash, line.as_bytes());
                    // Every JSON line is valid JSON.
                    serde_json::from_str::<serde_json::Value>(&line)
                        .unwrap_or_else(|e| panic!("{rel}: invalid JSON {e}: {line}"));
                }
                Err(e) => error = Some(e),
            }
        }
        total_rows += reader.stats().rows;
        match (error, expected.get(rel.as_str())) {
            (None, None) => {}
            (Some(e), Some(&(kind, offset))) => {
                assert_eq!(e.kind(), kind, "{rel}: {e}");
                assert_eq!(e.location().offset, Some(offset), "{rel}: {e}");
                assert_eq!(
                    e.location().file.as_deref(),
                    Some(path.as_path()),
                    "{rel}: {e}"
                );
                if kind == ErrorKind::Incomplete {
                    assert_eq!(e.resume_offset(), Some(offset), "{rel}: {e}");
                }
                seen_errors += 1;
            }
            (Some(e), None) => panic!("{rel}: unexpected error: {e}"),
            (None, Some(k)) => panic!("{rel}: expected {k:?}, decoded completely"),
        }
        let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        summary.push_str(&format!("{rel}\t{}\t{hash:016x}\n", counts.join(",")));
    }
    assert_eq!(seen_errors, expected.len());
    assert!(
        total_rows > 5000,
        "only {total_rows} rows decoded from the corpus"
    );

    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/corpus-summary.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &summary).unwrap();
    }
    let want =
        std::fs::read_to_string(&golden).expect("golden summary missing: run with UPDATE_GOLDEN=1");
    for (a, b) in want.lines().zip(summary.lines()) {
        assert_eq!(
            a, b,
            "corpus summary changed; review and regenerate with UPDATE_GOLDEN=1"
        );
    }
    assert_eq!(want.lines().count(), summary.lines().count());
}

#[test]
fn directory_input_follows_the_numeric_order() {
    let dir = corpus_root().join("mariadb-10.11/row-metadata-full");
    let reader = BinlogReader::open(std::slice::from_ref(&dir), BinlogOptions::default()).unwrap();
    let names: Vec<String> = reader
        .files()
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "mariadb-bin.000001",
            "mariadb-bin.000002",
            "mariadb-bin.000003"
        ]
    );
    let recs: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    // Checkpoints carry the file index and never go backwards across files.
    let files: Vec<u32> = recs.iter().map(|r| r.checkpoint.file_index).collect();
    assert!(files.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(files.first(), Some(&1));
    assert_eq!(files.last(), Some(&3));
}

#[test]
fn directory_index_is_used() {
    let tmp = std::env::temp_dir().join(format!("ct-index-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = corpus_root().join("mariadb-10.11/row-metadata-full");
    for n in ["mariadb-bin.000001", "mariadb-bin.000002"] {
        std::fs::copy(src.join(n), tmp.join(n)).unwrap();
    }
    // The index lists only the first file (by a server-side path): only it is read.
    std::fs::write(
        tmp.join("mariadb-bin.index"),
        "/var/lib/mysql/mariadb-bin.000001\n",
    )
    .unwrap();
    let reader = BinlogReader::open(std::slice::from_ref(&tmp), BinlogOptions::default()).unwrap();
    assert_eq!(reader.files().len(), 1);
    assert_eq!(reader.files()[0].index, 1);
    // An index naming a missing file is an error that says which.
    std::fs::write(tmp.join("mariadb-bin.index"), "./mariadb-bin.000009\n").unwrap();
    let err = BinlogReader::open(std::slice::from_ref(&tmp), BinlogOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("mariadb-bin.000009"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn event_size_cap_is_enforced() {
    // mariadb-bin.000002 holds a ~160 KB UPDATE event.
    let file = corpus_root().join("mariadb-10.11/row-metadata-full/mariadb-bin.000002");
    let opts = BinlogOptions {
        max_event_size: 100_000,
        ..BinlogOptions::default()
    };
    let err = BinlogReader::open(std::slice::from_ref(&file), opts)
        .unwrap()
        .find_map(Result::err)
        .expect("the cap must stop the read");
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert_eq!(err.location().file.as_deref(), Some(file.as_path()));
    assert!(err.location().offset.is_some());
}

#[test]
fn corrupted_bytes_give_typed_errors_never_panics() {
    // Flip every byte of a real file in turn (a few hundred positions): each decode ends
    // normally or with a typed error, and a CRC32 file always catches the flip.
    let file = corpus_root().join("mariadb-10.11/row-metadata-full/mariadb-bin.000003");
    let orig = std::fs::read(&file).unwrap();
    let mut caught = 0;
    for pos in (4..orig.len()).step_by(7) {
        let mut bytes = orig.clone();
        bytes[pos] ^= 0x5a;
        let reader = BinlogReader::from_bytes("flipped", 3, bytes, BinlogOptions::default());
        let mut failed = false;
        for r in reader {
            if let Err(e) = r {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Corruption
                            | ErrorKind::Incomplete
                            | ErrorKind::LimitExceeded
                            | ErrorKind::Unsupported
                    ),
                    "byte {pos}: {e}"
                );
                failed = true;
            }
        }
        caught += usize::from(failed);
    }
    let tried = (4..orig.len()).step_by(7).count();
    assert_eq!(
        caught, tried,
        "every flipped byte of a CRC32 binlog must be detected"
    );
}

#[test]
fn truncated_tail_reports_resume_position() {
    let file = corpus_root().join("mariadb-10.11/row-metadata-full/mariadb-bin.000003");
    let orig = std::fs::read(&file).unwrap();
    let full: Vec<_> = BinlogReader::from_bytes("full", 3, orig.clone(), BinlogOptions::default())
        .collect::<Result<_, _>>()
        .unwrap();
    for cut in [5usize, 100, 1000, orig.len() / 2, orig.len() - 1] {
        let mut got = Vec::new();
        let mut err = None;
        for r in BinlogReader::from_bytes("cut", 3, orig[..cut].to_vec(), BinlogOptions::default())
        {
            match r {
                Ok(r) => got.push(r),
                Err(e) => err = Some(e),
            }
        }
        let err = err.expect("a cut file must report its incomplete tail");
        assert_eq!(err.kind(), ErrorKind::Incomplete);
        let resume = err.resume_offset().unwrap();
        assert!(resume <= cut as u64);
        // Records decoded before the cut are a prefix of the full decode.
        assert_eq!(&full[..got.len()], &got[..]);
    }
}
