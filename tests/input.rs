//! The input list and damaged input (issue 13, items 4 to 6): an `.index` or arguments that
//! repeat a file or go backwards are an error naming the entry (unless, for `ingest`, the
//! repeated files are stored already); a multi-member gzip binlog is read whole; a damaged
//! event length or FDE checksum-algorithm byte is `Corruption` (exit 1), never "incomplete,
//! resume from offset ..." (exit 3), while a file that really ends inside its last event still
//! is. Library calls and the built binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use changetrack::store::ReadFrom;
use changetrack::{
    ingest, BinlogOptions, BinlogReader, ChangeRecord, ErrorKind, IngestOptions, Store,
    StoreOptions,
};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs")
        .join(rel)
}

fn full(n: u32) -> PathBuf {
    data(&format!(
        "mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
    ))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-input-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn decode(paths: &[PathBuf]) -> Vec<ChangeRecord> {
    BinlogReader::open(paths, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn dump(store: &Store) -> Vec<ChangeRecord> {
    store
        .iter(ReadFrom::Earliest)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn strip(v: &[ChangeRecord]) -> Vec<ChangeRecord> {
    v.iter()
        .map(|r| ChangeRecord {
            seq: 0,
            ..r.clone()
        })
        .collect()
}

/// A directory holding copies of the three corpus files and an index with these lines.
fn dir_with_index(name: &str, lines: &[&str]) -> PathBuf {
    let d = tmp(name);
    for n in 1..=3 {
        std::fs::copy(full(n), d.join(format!("mariadb-bin.00000{n}"))).unwrap();
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(d.join("mariadb-bin.index"), text).unwrap();
    d
}

// Item 4 -------------------------------------------------------------------------------------

#[test]
fn an_index_that_repeats_a_file_is_an_error_naming_the_index_and_the_line() {
    let d = dir_with_index(
        "repeat",
        &[
            "./mariadb-bin.000001",
            "./mariadb-bin.000002",
            "./mariadb-bin.000002",
        ],
    );
    let index = d.join("mariadb-bin.index");
    let err = BinlogReader::open(std::slice::from_ref(&d), BinlogOptions::default())
        .err()
        .expect("a repeated file must be refused");
    assert_eq!(err.kind(), ErrorKind::Corruption);
    assert_eq!(err.location().file.as_deref(), Some(index.as_path()));
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.to_string().contains("mariadb-bin.000002"), "{err}");

    // decode: an error, nothing printed twice.
    let o = run(&["decode", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(index.to_str().unwrap()),
        "{}",
        stderr(&o)
    );

    // ingest: an error, nothing stored.
    let store = d.join("store");
    let o = run(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--sync",
        "never",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    if store.exists() {
        let st = Store::open(&store, StoreOptions::default()).unwrap();
        assert!(dump(&st).is_empty());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_index_that_goes_backwards_is_an_error_naming_the_line() {
    let d = dir_with_index(
        "backwards",
        &[
            "/var/lib/mysql/mariadb-bin.000002",
            "",
            "/var/lib/mysql/mariadb-bin.000001",
            "/var/lib/mysql/mariadb-bin.000003",
        ],
    );
    let err = BinlogReader::open(std::slice::from_ref(&d), BinlogOptions::default())
        .err()
        .expect("an index out of order must be refused");
    assert_eq!(err.kind(), ErrorKind::Corruption);
    // Blank lines count: the entry is on line 3.
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.to_string().contains("goes back"), "{err}");
    let o = run(&["decode", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn arguments_that_repeat_or_go_backwards_are_bad_usage() {
    let (a, b) = (full(1), full(2));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for args in [[a, b, b], [b, a, b], [a, a, b]] {
        let o = run(&["decode", args[0], args[1], args[2]]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(stderr(&o).contains("input "), "{}", stderr(&o));
        let store = tmp("args-store");
        let o = run(&[
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--sync",
            "never",
            args[0],
            args[1],
            args[2],
        ]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let _ = std::fs::remove_dir_all(&store);
    }
    // The same file twice under names without a numeric suffix (numbered by position).
    let c = data("mysql/mysql-binlog-connector-java/mysql-bin.checksum-crc32");
    let c = c.to_str().unwrap();
    let o = run(&["decode", c, c]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a second time"), "{}", stderr(&o));
}

#[test]
fn ingest_resume_leaves_out_repeated_files_it_has_stored() {
    let d = dir_with_index("resume", &["./mariadb-bin.000001", "./mariadb-bin.000002"]);
    let sdir = d.join("store");
    let store = Store::open(&sdir, StoreOptions::default()).unwrap();
    let opts = IngestOptions::default();
    ingest(&store, std::slice::from_ref(&d), &opts, None, &mut |_| {}).unwrap();
    // The index now repeats the stored file 1 and goes back to it: the resume position is in
    // file 2, so file 1 is stored already and left out; file 3 is new.
    std::fs::write(
        d.join("mariadb-bin.index"),
        "./mariadb-bin.000001\n./mariadb-bin.000001\n./mariadb-bin.000002\n./mariadb-bin.000001\n./mariadb-bin.000003\n",
    )
    .unwrap();
    ingest(&store, std::slice::from_ref(&d), &opts, None, &mut |_| {}).unwrap();
    let want = decode(&[full(1), full(2), full(3)]);
    assert_eq!(
        strip(&dump(&store)),
        strip(&want),
        "every record exactly once"
    );
    // Repeating a file that is not (wholly) stored is still an error, and adds nothing.
    std::fs::write(
        d.join("mariadb-bin.index"),
        "./mariadb-bin.000003\n./mariadb-bin.000003\n",
    )
    .unwrap();
    let err = ingest(&store, std::slice::from_ref(&d), &opts, None, &mut |_| {})
        .expect_err("file 3 holds the resume position: repeating it is an error");
    assert_eq!(err.kind(), ErrorKind::Corruption);
    assert!(err.to_string().contains("line 2"), "{err}");
    assert_eq!(dump(&store).len(), want.len());
    drop(store);

    // The CLI does the same with arguments.
    let s2 = tmp("resume-cli");
    let st = s2.to_str().unwrap();
    let (a, b, c) = (full(1), full(2), full(3));
    let (a, b, c) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    );
    let o = run(&["ingest", "--store", st, "--sync", "never", a, b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["ingest", "--store", st, "--sync", "never", a, b, a, c]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = Store::open(&s2, StoreOptions::default()).unwrap();
    assert_eq!(strip(&dump(&store)), strip(&want));
    drop(store);
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&s2).unwrap();
}

// Item 5 -------------------------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_multi_member_gzip_binlog_is_read_whole() {
    let d = tmp("multigz");
    let orig = std::fs::read(full(2)).unwrap();
    // `cat a.gz b.gz c.gz`, split anywhere (here inside events).
    let (x, y) = (orig.len() / 3, orig.len() / 3 * 2 + 7);
    let mut gz = gzip(&orig[..x]);
    gz.extend(gzip(&orig[x..y]));
    gz.extend(gzip(&orig[y..]));
    let p = d.join("mariadb-bin.000002");
    std::fs::write(&p, &gz).unwrap();
    let want = decode(&[full(2)]);
    assert!(want.len() > 100);
    assert_eq!(decode(std::slice::from_ref(&p)), want);
    let o = run(&["decode", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = run(&["decode", full(2).to_str().unwrap()]);
    assert_eq!(o.stdout, plain.stdout);
    // Garbage after the last member is corruption, located in the file.
    let mut bad = gz.clone();
    bad.extend_from_slice(b"not gzip at all");
    std::fs::write(&p, &bad).unwrap();
    let err = BinlogReader::open(std::slice::from_ref(&p), BinlogOptions::default())
        .unwrap()
        .find_map(Result::err)
        .expect("trailing garbage must be an error");
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    assert_eq!(err.location().file.as_deref(), Some(p.as_path()));
    std::fs::remove_dir_all(&d).unwrap();
}

// Item 6 -------------------------------------------------------------------------------------

/// Offsets of the events of a binlog file.
fn events(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 4;
    while off + 19 <= b.len() {
        out.push(off);
        let size = u32::from_le_bytes(b[off + 9..off + 13].try_into().unwrap()) as usize;
        off += size;
    }
    out
}

fn first_error(name: &Path, bytes: Vec<u8>) -> Option<changetrack::Error> {
    BinlogReader::from_bytes(name, 2, bytes, BinlogOptions::default()).find_map(Result::err)
}

#[test]
fn a_damaged_event_length_is_corruption_not_an_incomplete_tail() {
    for variant in ["row-metadata-full", "checksum-none"] {
        let file = data(&format!("mariadb-10.11/{variant}/mariadb-bin.000002"));
        let orig = std::fs::read(&file).unwrap();
        let evs = events(&orig);
        // Every event's length made to run past the end of the file (one bit flipped), and
        // past the largest event a server writes.
        for (i, &at) in evs.iter().enumerate().skip(1) {
            for bit in [20u32, 31] {
                let mut b = orig.clone();
                let size = u32::from_le_bytes(b[at + 9..at + 13].try_into().unwrap());
                b[at + 9..at + 13].copy_from_slice(&(size ^ (1 << bit)).to_le_bytes());
                let err = first_error(&file, b)
                    .unwrap_or_else(|| panic!("{variant} event {i} bit {bit}: not detected"));
                assert_eq!(
                    err.kind(),
                    ErrorKind::Corruption,
                    "{variant} event {i} at {at} bit {bit}: {err}"
                );
                assert_eq!(err.location().offset, Some(at as u64), "{err}");
                assert!(err.resume_offset().is_none(), "{err}");
            }
        }
        // A file cut inside an event is still an incomplete tail, resumable there.
        for &at in evs.iter().skip(1).step_by(13) {
            let size = u32::from_le_bytes(orig[at + 9..at + 13].try_into().unwrap()) as usize;
            let cut = at + 20.min(size - 1);
            let err = first_error(&file, orig[..cut].to_vec()).expect("a cut file");
            assert_eq!(
                err.kind(),
                ErrorKind::Incomplete,
                "{variant} cut at {cut}: {err}"
            );
            // Resumable where the cut event's transaction starts (an event boundary at or
            // before it: resuming at the cut event itself would skip its TABLE_MAP).
            let resume = err.resume_offset().expect("a resume offset") as usize;
            assert!(
                resume <= at && evs.contains(&resume),
                "{variant} cut at {cut}: resume {resume}, event {at}"
            );
        }
    }

    // The CLI: exit 1 naming the file and offset, not exit 3 with "resume from offset".
    let d = tmp("flip");
    let orig = std::fs::read(full(2)).unwrap();
    let at = events(&orig)[100];
    let mut b = orig.clone();
    b[at + 11] ^= 0x01; // bit 16 of the length
    let p = d.join("mariadb-bin.000002");
    std::fs::write(&p, &b).unwrap();
    let o = run(&["decode", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("in {} at offset {at}", p.display())),
        "{e}"
    );
    assert!(!e.contains("resume"), "{e}");
    let store = d.join("store");
    let o = run(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--sync",
        "never",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("at offset {at}")),
        "{}",
        stderr(&o)
    );
    // A cut file is still exit 3.
    std::fs::write(&p, &orig[..at + 30]).unwrap();
    let o = run(&["decode", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("resume from offset {at}")));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_damaged_fde_checksum_algorithm_is_corruption() {
    // A MySQL 5.7 file without rows: FORMAT_DESCRIPTION, PREVIOUS_GTIDS, STOP (CRC32).
    let file = data("mysql/mysql-cdc-rs/5.7/03_stop/log.bin");
    let orig = std::fs::read(&file).unwrap();
    let size = u32::from_le_bytes(orig[4 + 9..4 + 13].try_into().unwrap()) as usize;
    let alg_at = 4 + size - 5;
    assert_eq!(orig[alg_at], 1, "the FDE announces CRC32");
    assert!(first_error(&file, orig.clone()).is_none());
    let d = tmp("fde");
    let p = d.join("log.bin");
    for flip in [0x01u8, 0x02, 0x80, 0xff] {
        let mut b = orig.clone();
        b[alg_at] ^= flip;
        let err = first_error(&file, b.clone())
            .unwrap_or_else(|| panic!("alg byte {:#x}: not detected", orig[alg_at] ^ flip));
        assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
        assert_eq!(err.location().offset, Some(4), "{err}");
        std::fs::write(&p, &b).unwrap();
        let o = run(&["decode", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("at offset 4"), "{}", stderr(&o));
    }
    // binlog_checksum=NONE: the FDE still carries a CRC32 of its own, which is checked.
    let none = data("mariadb-10.11/checksum-none/mariadb-bin.000003");
    let orig = std::fs::read(&none).unwrap();
    let size = u32::from_le_bytes(orig[4 + 9..4 + 13].try_into().unwrap()) as usize;
    let alg_at = 4 + size - 5;
    assert_eq!(orig[alg_at], 0);
    assert!(first_error(&none, orig.clone()).is_none());
    for flip in [0x01u8, 0x04] {
        let mut b = orig.clone();
        b[alg_at] ^= flip;
        let err = first_error(&none, b).expect("detected");
        assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    }
    // Any other byte of that FDE after the server version (which says whether the FDE has a
    // checksum at all).
    for at in (4 + 19..4 + 19 + 2).chain(4 + 19 + 52..4 + size) {
        let mut b = orig.clone();
        b[at] ^= 0x10;
        let err = first_error(&none, b).unwrap_or_else(|| panic!("FDE byte {at}: not detected"));
        assert!(
            matches!(err.kind(), ErrorKind::Corruption | ErrorKind::Unsupported),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
