//! Memory bounds (issue 13, item 8): `decode` and `ingest` read binlog files as streams in
//! bounded chunks, so their peak RSS does not grow with the file (it used to be about the file's
//! size), and a gzip bomb stops at `--max-inflated-bytes` instead of inflating into memory.
//!
//! Peak RSS is measured with `/usr/bin/time -v` around the built binary. The inputs are
//! generated into a temporary directory from a corpus binlog by repeating its transactions
//! (positions and CRC32s rewritten), and deleted afterwards. The 1 GiB test takes about 40 s
//! on the 2-core CI machine type (decode, ingest, and decode of the gzipped file).

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const MIB: u64 = 1 << 20;
/// What the tests allow above the configured limit for `decode`: the program, its libraries,
/// the decoder's state.
const SLACK: u64 = 150 * MIB;
/// The same for `ingest`, which also holds RocksDB's memtables and caches and a batch of
/// records (measured: 160 MiB in all for the 1 GiB binlog).
const INGEST_SLACK: u64 = 300 * MIB;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs")
        .join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-memory-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Run {
    code: Option<i32>,
    stderr: String,
    /// Peak resident set size, bytes.
    peak_rss: u64,
}

/// Runs the binary under `/usr/bin/time -v` (stdout discarded) and reads its peak RSS.
fn run_measured(args: &[&str], dir: &Path) -> Run {
    let report = dir.join("time.txt");
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("/usr/bin/time runs");
    let text = std::fs::read_to_string(&report).unwrap();
    let kb: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .expect("a peak RSS line")
        .trim()
        .parse()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Exit status:"))
        .and_then(|c| c.trim().parse().ok());
    Run {
        code,
        stderr,
        peak_rss: kb * 1024,
    }
}

/// The events of a binlog file: (offset, bytes).
fn events(b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut off = 4;
    while off + 19 <= b.len() {
        let size = u32::from_le_bytes(b[off + 9..off + 13].try_into().unwrap()) as usize;
        out.push(&b[off..off + size]);
        off += size;
    }
    out
}

/// Writes a valid binlog of at least `target` bytes: the corpus file's FORMAT_DESCRIPTION and
/// preamble, then its transactions (from the first GTID event, without the closing ROTATE)
/// again and again, each event's `log_pos` and CRC32 rewritten for its new place. Returns the
/// number of copies.
fn big_binlog(path: &Path, target: u64) -> u64 {
    let src = std::fs::read(data("mariadb-10.11/row-metadata-full/mariadb-bin.000002")).unwrap();
    let evs = events(&src);
    let first_gtid = evs.iter().position(|e| e[4] == 162).unwrap();
    let body: Vec<&[u8]> = evs[first_gtid..]
        .iter()
        .copied()
        .filter(|e| e[4] != 4 && e[4] != 3)
        .collect();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    w.write_all(&src[..4]).unwrap();
    let mut off = 4u64;
    for e in &evs[..first_gtid] {
        w.write_all(e).unwrap();
        off += e.len() as u64;
    }
    let mut copies = 0;
    let mut buf = Vec::new();
    while off < target {
        for e in &body {
            buf.clear();
            buf.extend_from_slice(e);
            let end = off + e.len() as u64;
            let end32 = u32::try_from(end).expect("positions fit in 32 bits below 4 GiB");
            buf[13..17].copy_from_slice(&end32.to_le_bytes());
            let n = buf.len();
            let crc = crc32fast::hash(&buf[..n - 4]);
            buf[n - 4..].copy_from_slice(&crc.to_le_bytes());
            w.write_all(&buf).unwrap();
            off = end;
        }
        copies += 1;
    }
    w.flush().unwrap();
    copies
}

fn gzip_file(from: &Path, to: &Path) {
    let mut r = std::fs::File::open(from).unwrap();
    let mut e = flate2::write::GzEncoder::new(
        BufWriter::new(std::fs::File::create(to).unwrap()),
        flate2::Compression::fast(),
    );
    std::io::copy(&mut r, &mut e).unwrap();
    e.finish().unwrap().flush().unwrap();
}

fn large_binlogs_are_streamed(size: u64) {
    let d = tmp(&format!("big-{}", size / MIB));
    let p = d.join("mariadb-bin.000002");
    let copies = big_binlog(&p, size);
    let file_len = std::fs::metadata(&p).unwrap().len();
    let limit = 16 * MIB;
    let limit_arg = "16M";
    let bound = limit + SLACK;
    let ingest_bound = limit + INGEST_SLACK;
    assert!(
        ingest_bound < file_len,
        "the file must be bigger than the bounds"
    );

    // Every copy of the source's transactions is decoded.
    let per_copy =
        changetrack::decode_all(&[data("mariadb-10.11/row-metadata-full/mariadb-bin.000002")])
            .unwrap()
            .len() as u64;
    let records = format!(" {} records", per_copy * copies);
    let r = run_measured(
        &[
            "decode",
            "--stats",
            "--max-event-size",
            limit_arg,
            p.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains(&records), "{records}: {}", r.stderr);
    eprintln!(
        "decode of a {} MiB binlog ({copies} copies): peak RSS {} MiB",
        file_len / MIB,
        r.peak_rss / MIB
    );
    assert!(
        r.peak_rss < bound,
        "decode peak RSS {} MiB over {} MiB",
        r.peak_rss / MIB,
        bound / MIB
    );

    let store = d.join("store");
    let r = run_measured(
        &[
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--sync",
            "never",
            "--max-event-size",
            limit_arg,
            p.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    eprintln!(
        "ingest of a {} MiB binlog: peak RSS {} MiB",
        file_len / MIB,
        r.peak_rss / MIB
    );
    assert!(
        r.peak_rss < ingest_bound,
        "ingest peak RSS {} MiB over {} MiB",
        r.peak_rss / MIB,
        ingest_bound / MIB
    );
    std::fs::remove_dir_all(&store).unwrap();

    // Compressed: inflated as it is read.
    let gz = d.join("mariadb-bin.000003");
    gzip_file(&p, &gz);
    std::fs::remove_file(&p).unwrap();
    let r = run_measured(
        &[
            "decode",
            "--stats",
            "--max-event-size",
            limit_arg,
            "--max-inflated-bytes",
            "4G",
            gz.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains(&records), "{records}: {}", r.stderr);
    eprintln!(
        "decode of the same binlog gzipped: peak RSS {} MiB",
        r.peak_rss / MIB
    );
    assert!(
        r.peak_rss < bound,
        "gzip decode peak RSS {} MiB",
        r.peak_rss / MIB
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_1_gib_binlog_is_read_in_bounded_memory() {
    large_binlogs_are_streamed(1 << 30);
}

fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A gzip bomb: about 1 MB of multi-member gzip that inflates to 1 GiB, a binlog whose second
/// event claims 900 MiB (all zeros).
fn gzip_bomb(path: &Path) {
    let src = std::fs::read(data("mariadb-10.11/row-metadata-full/mariadb-bin.000002")).unwrap();
    let fde = events(&src)[0];
    let mut first = src[..4].to_vec();
    first.extend_from_slice(fde);
    let at = first.len() as u32;
    let size: u32 = 900 << 20;
    let mut h = [0u8; 19];
    h[4] = 2; // QUERY
    h[5..9].copy_from_slice(&1u32.to_le_bytes());
    h[9..13].copy_from_slice(&size.to_le_bytes());
    h[13..17].copy_from_slice(&(at + size).to_le_bytes());
    first.extend_from_slice(&h);
    first.resize(1 << 20, 0);
    let zeros = gzip_member(&vec![0u8; 1 << 20]);
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(&gzip_member(&first)).unwrap();
    for _ in 1..1024 {
        w.write_all(&zeros).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn a_gzip_bomb_stops_at_the_inflate_limit() {
    let d = tmp("bomb");
    let p = d.join("mariadb-bin.000002.gz");
    gzip_bomb(&p);
    assert!(std::fs::metadata(&p).unwrap().len() < 4 * MIB);
    let limit = 64 * MIB;
    let bound = limit + SLACK;
    let r = run_measured(
        &["decode", "--max-inflated-bytes", "64M", p.to_str().unwrap()],
        &d,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("inflates to more than 67108864 bytes"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(p.to_str().unwrap()), "{}", r.stderr);
    eprintln!("decode of a gzip bomb: peak RSS {} MiB", r.peak_rss / MIB);
    assert!(r.peak_rss < bound, "peak RSS {} MiB", r.peak_rss / MIB);

    let store = d.join("store");
    let r = run_measured(
        &[
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--sync",
            "never",
            "--max-inflated-bytes",
            "64M",
            p.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("inflates to more than"), "{}", r.stderr);
    eprintln!("ingest of a gzip bomb: peak RSS {} MiB", r.peak_rss / MIB);
    assert!(
        r.peak_rss < limit + INGEST_SLACK,
        "peak RSS {} MiB",
        r.peak_rss / MIB
    );

    // An event over --max-event-size is refused before anything is inflated for it.
    let r = run_measured(
        &["decode", "--max-event-size", "16M", p.to_str().unwrap()],
        &d,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("event size cap"), "{}", r.stderr);
    assert!(
        r.peak_rss < 16 * MIB + SLACK,
        "peak RSS {} MiB",
        r.peak_rss / MIB
    );
    std::fs::remove_dir_all(&d).unwrap();
}
