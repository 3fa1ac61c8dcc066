//! Store benchmarks: append, sequential read, point get, seeks, and the record codec against
//! DTS Avro.
//!
//! Records are real: the corpus binlogs `mariadb-10.11/row-metadata-full/mariadb-bin.000001`
//! (many column types) and `mysql/mysql-binlog-connector-java/mysql-bin.sakila.gz` (the Sakila
//! sample database, inflated in memory) are decoded once. One "pass" is those records with
//! their checkpoints and timestamps moved forward (new file indexes, later seconds), so that
//! repeated passes look like one growing binlog stream with increasing positions.
//!
//! Groups (a filter selects them, e.g. `cargo bench --bench store -- seek`):
//! - `append/per-batch`, `append/never`: a fresh store in a temporary directory per
//!   iteration, then passes appended in transactions of 1000 records (`Store::append`, each
//!   with its resume position) until about `CHANGETRACK_BENCH_APPEND_RECORDS` (default
//!   200 000) records. Only the appends are timed (not open/close). Throughput: records/s and
//!   bytes/s of encoded records (what the store writes; the setup line prints binlog bytes per
//!   record for conversion).
//! - `read/iter`: every record through `store.iter(ReadFrom::Earliest)` (decoded records; past
//!   4096 records the iterator reads ahead on a helper thread).
//! - `read/iter-one-thread`: the same with `StoreOptions::read_ahead_thread` off (everything
//!   on the caller's thread), through a follower handle.
//! - `get/seq`: `store.get(seq)` at random seqs.
//! - `seek/{timestamp,checkpoint}/{resolve,iter_next}`: `store.resolve(..)`, and
//!   `store.iter(..)` + the first `next()`, at random positions taken from stored records.
//! - `seek/percentiles`: not a criterion benchmark: 1000 random positions per kind, each seek
//!   timed alone; prints p50/p90/p99/max from the raw samples (lines starting with
//!   `seek-percentiles`).
//! - `codec/{encode,decode}`, `avro/{encode,decode}`: per record over one pass:
//!   `record::codec::encode` (with a warmed `MemoryDictionary`) / `codec::decode` to a
//!   `ChangeRecord`, against `record::avro::to_avro` / `avro::decode_with_apache_avro` (which
//!   only builds an apache-avro `Value`, less work than a `ChangeRecord`). Both encoders write
//!   into a fresh `Vec` per record. The setup prints both sizes.
//!
//! Read, get and seeks use a store built here (Never sync, about
//! `CHANGETRACK_BENCH_READ_RECORDS`, default 200 000 records, reopened so that the data is in
//! SST files, not the memtable), or, when `CHANGETRACK_BENCH_STORE=DIR` is set, that existing
//! store (opened as the writer; it is not modified except that RocksDB may flush its log on
//! open): `benches/store_e2e.sh` ingests a 1M-row binlog with the CLI and runs
//! `cargo bench --bench store -- seek` (and `-- read/`) against it.
//!
//! Run: `cargo bench --bench store` (about two minutes).

use std::cell::OnceCell;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

use changetrack::record::codec::{self, MemoryDictionary};
use changetrack::record::{avro, Checkpoint};
use changetrack::store::{ReadFrom, SourcePosition};
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, Store, StoreOptions, SyncMode};

/// Records per `Store::append` call (one atomic batch with its resume position).
const TXN_RECORDS: usize = 1000;
/// Random positions per seek kind in `seek/percentiles`.
const SEEK_SAMPLES: usize = 1000;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: deterministic positions without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus: one pass of records.

struct Corpus {
    /// One pass, positions remapped to file indexes 1 and 2 and increasing timestamps.
    records: Vec<ChangeRecord>,
    /// Seconds covered by one pass (the next pass starts after it).
    span: u32,
    /// Codec bytes of one pass (dictionary entries excluded).
    codec_bytes: u64,
    avro_bytes: u64,
}

fn decode_file(path: &Path) -> (Vec<ChangeRecord>, u64) {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (file, bytes) = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .expect("inflate binlog");
        let dst = std::env::temp_dir().join(format!(
            "changetrack-bench-store-{}-{}",
            std::process::id(),
            path.file_stem().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&dst, &out).expect("write inflated binlog");
        (dst, out.len() as u64)
    } else {
        (path.to_path_buf(), raw.len() as u64)
    };
    let records: Vec<ChangeRecord> =
        BinlogReader::open(std::slice::from_ref(&file), BinlogOptions::default())
            .expect("open binlog")
            .collect::<Result<_, _>>()
            .expect("decode binlog");
    if file != path {
        let _ = std::fs::remove_file(&file);
    }
    (records, bytes)
}

fn load_corpus() -> Corpus {
    let files = [
        data_dir().join("mariadb-10.11/row-metadata-full/mariadb-bin.000001"),
        data_dir().join("mysql/mysql-binlog-connector-java/mysql-bin.sakila.gz"),
    ];
    let mut records = Vec::new();
    let mut binlog_bytes = 0;
    let mut next_ts: u32 = 1_700_000_000;
    for (i, f) in files.iter().enumerate() {
        let (recs, bytes) = decode_file(f);
        binlog_bytes += bytes;
        let min = recs.iter().map(|r| r.timestamp).min().unwrap_or(0);
        let max = recs.iter().map(|r| r.timestamp).max().unwrap_or(0);
        let file_index = u32::try_from(i + 1).expect("file index");
        for mut r in recs {
            r.checkpoint.file_index = file_index;
            r.safe_checkpoint.file_index = file_index;
            r.timestamp = next_ts + (r.timestamp - min);
            records.push(r);
        }
        next_ts += max - min + 1;
    }
    let span = next_ts - 1_700_000_000;
    let mut dict = MemoryDictionary::default();
    let mut codec_bytes = 0u64;
    let mut avro_bytes = 0u64;
    let mut buf = Vec::new();
    for r in &records {
        buf.clear();
        codec::encode(&mut buf, r, &mut dict);
        codec_bytes += buf.len() as u64;
        avro_bytes += avro::to_avro(r).len() as u64;
    }
    let n = records.len() as f64;
    let rows = records.iter().filter(|r| r.op.is_dml()).count();
    eprintln!(
        "corpus pass: {} records ({rows} rows), binlog {binlog_bytes} B ({:.1} B/record), \
         codec {codec_bytes} B ({:.1} B/record), DTS Avro {avro_bytes} B ({:.1} B/record): \
         Avro/codec = {:.2}x",
        records.len(),
        binlog_bytes as f64 / n,
        codec_bytes as f64 / n,
        avro_bytes as f64 / n,
        avro_bytes as f64 / codec_bytes as f64
    );
    Corpus {
        records,
        span,
        codec_bytes,
        avro_bytes,
    }
}

/// Moves a pass forward: two file indexes and one span of seconds later.
fn advance(records: &mut [ChangeRecord], span: u32) {
    for r in records {
        r.checkpoint.file_index += 2;
        r.safe_checkpoint.file_index += 2;
        r.timestamp += span;
    }
}

/// Appends one pass in transactions of `TXN_RECORDS`, each with its resume position.
fn append_pass(store: &Store, records: &[ChangeRecord]) {
    for chunk in records.chunks(TXN_RECORDS) {
        let last = chunk.last().map_or(Checkpoint::default(), |r| r.checkpoint);
        let pos = SourcePosition {
            file_name: format!("bench-bin.{:06}", last.file_index),
            file_index: last.file_index,
            offset: last.offset,
            stored_through: last,
        };
        store.append(chunk, Some(&pos)).expect("append");
    }
}

fn temp_store_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "changetrack-bench-store-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

// ---------------------------------------------------------------------------------------------
// The store read, get and seek benchmarks run against.

struct ReadStore {
    store: Store,
    /// Removed at the end when the store was built here.
    temp: Option<PathBuf>,
    oldest: u64,
    last: u64,
    /// Random stored records' seq, checkpoint and timestamp.
    positions: Vec<(u64, Checkpoint, u32)>,
}

impl Drop for ReadStore {
    fn drop(&mut self) {
        if let Some(d) = &self.temp {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn open_read_store(corpus: &OnceCell<Corpus>) -> ReadStore {
    let (store, temp) = if let Some(dir) = std::env::var_os("CHANGETRACK_BENCH_STORE") {
        let dir = PathBuf::from(dir);
        let started = Instant::now();
        let store = Store::open(
            &dir,
            StoreOptions {
                create_if_missing: false,
                sync: SyncMode::Never,
                ..StoreOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
        eprintln!(
            "read store: {} (opened in {:.2}s)",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
        (store, None)
    } else {
        let corpus = corpus.get_or_init(load_corpus);
        let want = env_usize("CHANGETRACK_BENCH_READ_RECORDS", 200_000);
        let passes = want.div_ceil(corpus.records.len()).max(1);
        let dir = temp_store_dir("read");
        let started = Instant::now();
        {
            let store = Store::open(
                &dir,
                StoreOptions {
                    sync: SyncMode::Never,
                    ..StoreOptions::default()
                },
            )
            .expect("open store");
            let mut recs = corpus.records.clone();
            for _ in 0..passes {
                append_pass(&store, &recs);
                advance(&mut recs, corpus.span);
            }
        }
        // Reopened: RocksDB flushes the recovered log to SST files, as after a restart.
        let store = Store::open(&dir, StoreOptions::default()).expect("reopen store");
        eprintln!(
            "read store: {} passes built in {:.2}s in {}",
            passes,
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        (store, Some(dir))
    };
    let range = store
        .data_range()
        .expect("data range")
        .expect("the store is empty");
    let stats = store.stats().expect("stats");
    eprintln!(
        "read store: {} records, seq {}..{}, {} record bytes, {} disk bytes, range {range}",
        stats.records, range.oldest.seq, range.newest.seq, stats.record_bytes, stats.disk_bytes
    );
    let (oldest, last) = (range.oldest.seq, range.newest.seq);
    let mut rng = Rng(0x5EED);
    let positions = (0..SEEK_SAMPLES)
        .map(|_| {
            let seq = rng.range(oldest, last);
            let r = store.get(seq).expect("get");
            (seq, r.checkpoint, r.timestamp)
        })
        .collect();
    ReadStore {
        store,
        temp,
        oldest,
        last,
        positions,
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmarks.

fn bench_append(c: &mut Criterion, corpus: &OnceCell<Corpus>) {
    let mut group = c.benchmark_group("append");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, sync) in [
        ("per-batch", SyncMode::PerBatch),
        ("never", SyncMode::Never),
    ] {
        // The throughput must be known before the benchmark: load the corpus now only if this
        // benchmark is selected (criterion skips the closure otherwise, not this code).
        if !selected(&format!("append/{name}")) {
            continue;
        }
        let corpus = corpus.get_or_init(load_corpus);
        let want = env_usize("CHANGETRACK_BENCH_APPEND_RECORDS", 200_000);
        let passes = want.div_ceil(corpus.records.len()).max(1);
        group.throughput(Throughput::ElementsAndBytes {
            elements: (passes * corpus.records.len()) as u64,
            bytes: passes as u64 * corpus.codec_bytes,
        });
        let mut recs = corpus.records.clone();
        group.bench_function(
            BenchmarkId::new(name, format!("{passes}x{}", recs.len())),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = temp_store_dir(&format!("append-{name}"));
                        let store = Store::open(
                            &dir,
                            StoreOptions {
                                sync,
                                ..StoreOptions::default()
                            },
                        )
                        .expect("open store");
                        for _ in 0..passes {
                            advance(&mut recs, corpus.span);
                            let t = Instant::now();
                            append_pass(&store, &recs);
                            total += t.elapsed();
                        }
                        drop(store);
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

fn bench_read(c: &mut Criterion, rs: &OnceCell<ReadStore>, corpus: &OnceCell<Corpus>) {
    let mut group = c.benchmark_group("read");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    if selected("read/iter") {
        let s = rs.get_or_init(|| open_read_store(corpus));
        let n = s.last - s.oldest + 1;
        group.throughput(Throughput::Elements(n));
        group.bench_function("iter", |b| {
            b.iter(|| {
                let mut count = 0u64;
                for r in s.store.iter(ReadFrom::Earliest).expect("iter") {
                    black_box(r.expect("record"));
                    count += 1;
                }
                assert_eq!(count, n);
                count
            });
        });
        // The same scan on the caller's thread alone: a follower handle opened with
        // `read_ahead_thread: false` (the writer handle above holds the store's lock).
        let one = Store::open(
            s.store.path(),
            StoreOptions {
                read_only: true,
                read_ahead_thread: false,
                ..StoreOptions::default()
            },
        )
        .expect("open a follower");
        group.bench_function("iter-one-thread", |b| {
            b.iter(|| {
                let mut count = 0u64;
                for r in one.iter(ReadFrom::Earliest).expect("iter") {
                    black_box(r.expect("record"));
                    count += 1;
                }
                assert_eq!(count, n);
                count
            });
        });
    }
    group.finish();
}

fn bench_get_and_seek(c: &mut Criterion, rs: &OnceCell<ReadStore>, corpus: &OnceCell<Corpus>) {
    let init = || open_read_store(corpus);
    let mut group = c.benchmark_group("get");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    group.bench_function("seq", |b| {
        let s = rs.get_or_init(init);
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % s.positions.len();
            s.store.get(s.positions[i].0).expect("get")
        });
    });
    group.finish();

    let mut group = c.benchmark_group("seek");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for kind in ["timestamp", "checkpoint"] {
        let from = move |p: &(u64, Checkpoint, u32)| match kind {
            "timestamp" => ReadFrom::Timestamp(p.2),
            _ => ReadFrom::Checkpoint(p.1),
        };
        group.bench_function(format!("{kind}/resolve"), |b| {
            let s = rs.get_or_init(init);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % s.positions.len();
                s.store.resolve(from(&s.positions[i])).expect("resolve")
            });
        });
        group.bench_function(format!("{kind}/iter_next"), |b| {
            let s = rs.get_or_init(init);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % s.positions.len();
                let mut it = s.store.iter(from(&s.positions[i])).expect("iter");
                it.next().expect("a record").expect("record")
            });
        });
    }
    group.finish();

    if selected("seek/percentiles") {
        let s = rs.get_or_init(init);
        seek_percentiles(s);
    }
}

/// Each seek timed alone over `SEEK_SAMPLES` random positions (after one warm-up pass).
fn seek_percentiles(s: &ReadStore) {
    type Op<'a> = Box<dyn Fn(&(u64, Checkpoint, u32)) + 'a>;
    let st = &s.store;
    let kinds: Vec<(&str, Op<'_>)> = vec![
        (
            "get(seq)",
            Box::new(|p| {
                black_box(st.get(p.0).expect("get"));
            }),
        ),
        (
            "resolve(timestamp)",
            Box::new(|p| {
                black_box(st.resolve(ReadFrom::Timestamp(p.2)).expect("resolve"));
            }),
        ),
        (
            "iter(timestamp)+next",
            Box::new(|p| {
                let mut it = st.iter(ReadFrom::Timestamp(p.2)).expect("iter");
                black_box(it.next().expect("a record").expect("record"));
            }),
        ),
        (
            "resolve(checkpoint)",
            Box::new(|p| {
                black_box(st.resolve(ReadFrom::Checkpoint(p.1)).expect("resolve"));
            }),
        ),
        (
            "iter(checkpoint)+next",
            Box::new(|p| {
                let mut it = st.iter(ReadFrom::Checkpoint(p.1)).expect("iter");
                black_box(it.next().expect("a record").expect("record"));
            }),
        ),
    ];
    println!(
        "seek/percentiles: {} random positions per kind over seq {}..{} (microseconds)",
        s.positions.len(),
        s.oldest,
        s.last
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "p50", "p90", "p99", "max", "mean"
    );
    let mut samples = Vec::with_capacity(s.positions.len());
    for (name, op) in &kinds {
        for p in &s.positions {
            op(p);
        }
        samples.clear();
        for p in &s.positions {
            let t = Instant::now();
            op(p);
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        samples.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i]
        };
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        println!(
            "{name:<24} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            pct(0.50),
            pct(0.90),
            pct(0.99),
            samples[samples.len() - 1],
            mean
        );
        // One machine-readable line per kind (benches/store_e2e.sh reads these).
        println!(
            "seek-percentiles kind={name} n={} p50_us={:.2} p90_us={:.2} p99_us={:.2} max_us={:.2} mean_us={:.2}",
            samples.len(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            samples[samples.len() - 1],
            mean
        );
    }
}

fn bench_codec(c: &mut Criterion, corpus: &OnceCell<Corpus>) {
    if !selected("codec/") && !selected("avro/") {
        return;
    }
    let corpus = corpus.get_or_init(load_corpus);
    let records = &corpus.records;
    let mut dict = MemoryDictionary::default();
    let encoded: Vec<bytes::Bytes> = records
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            codec::encode(&mut b, r, &mut dict);
            bytes::Bytes::from(b)
        })
        .collect();
    let avros: Vec<Vec<u8>> = records.iter().map(avro::to_avro).collect();
    for (group_name, bytes) in [("codec", corpus.codec_bytes), ("avro", corpus.avro_bytes)] {
        let mut group = c.benchmark_group(group_name);
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(3));
        if group_name == "avro" {
            // apache-avro decoding takes about a second per pass.
            group.sampling_mode(SamplingMode::Flat).sample_size(10);
        } else {
            group.sample_size(20);
        }
        group.throughput(Throughput::ElementsAndBytes {
            elements: records.len() as u64,
            bytes,
        });
        if group_name == "codec" {
            group.bench_function("encode", |b| {
                b.iter(|| {
                    let mut n = 0;
                    for r in records {
                        let mut out = Vec::with_capacity(256);
                        codec::encode(&mut out, r, &mut dict);
                        n += black_box(out).len();
                    }
                    n
                });
            });
            group.bench_function("decode", |b| {
                b.iter(|| {
                    for (i, e) in encoded.iter().enumerate() {
                        black_box(codec::decode(e, e, i as u64, &dict).expect("decode"));
                    }
                });
            });
        } else {
            group.bench_function("encode", |b| {
                b.iter(|| {
                    let mut n = 0;
                    for r in records {
                        n += black_box(avro::to_avro(r)).len();
                    }
                    n
                });
            });
            group.bench_function("decode", |b| {
                b.iter(|| {
                    for a in &avros {
                        black_box(avro::decode_with_apache_avro(a).expect("decode"));
                    }
                });
            });
        }
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmark selection: criterion applies its filter to the benchmarks, but the expensive
// setups (and `seek/percentiles`, which is not a criterion benchmark) are decided here with the
// same positional filter, read as plain substrings.

fn filter() -> Option<String> {
    const WITH_VALUE: &[&str] = &[
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--format",
        "--logfile",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Whether a benchmark id is selected: each `|` alternative of the filter, as a substring.
fn selected(id: &str) -> bool {
    filter().is_none_or(|f| {
        f.split('|')
            .map(|a| a.trim_start_matches('^').trim_end_matches('$'))
            .any(|a| id.contains(a) || a.contains(id))
    })
}

fn main() {
    let corpus = OnceCell::new();
    let read_store = OnceCell::new();
    let mut c = Criterion::default().configure_from_args();
    bench_codec(&mut c, &corpus);
    bench_append(&mut c, &corpus);
    bench_read(&mut c, &read_store, &corpus);
    bench_get_and_seek(&mut c, &read_store, &corpus);
    c.final_summary();
}
