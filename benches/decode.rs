//! Decoding throughput on real binlogs from `tests/data/binlogs`.
//!
//! Three pipelines per file, each reading the file from disk (into memory) through
//! [`changetrack::BinlogReader`]:
//! - `decode`: records only (values decoded, records dropped);
//! - `decode+json`: each record rendered with `record::json::push_record` (as `decode --format jsonl`);
//! - `decode+avro`: each record encoded with `record::avro::write_record` (as `decode --format avro`).
//!
//! Two groups: `bytes` reports MB/s of binlog (`Throughput::Bytes`); `rows` reports row changes
//! per second (`Throughput::Elements`) for the files that carry row events.
//!
//! Run: `cargo bench --bench decode` (about a minute and a half of measuring). A filter narrows it, e.g.
//! `cargo bench --bench decode -- rows/decode+json`.
//!
//! `CHANGETRACK_BENCH_FILES=path[:path...]` adds binlog files of your own (for example the one
//! `benches/decode_vs_mariadb_binlog.sh` generates with `KEEP=1`); big files take a while.

use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

use changetrack::record::{avro, json};
use changetrack::{BinlogOptions, BinlogReader};

/// A binlog under `tests/data/binlogs`.
struct Input {
    /// Short name shown in benchmark ids.
    name: &'static str,
    /// Path relative to `tests/data/binlogs`.
    rel: &'static str,
}

const INPUTS: &[Input] = &[
    // 143 records / 66 rows of many column types (row metadata FULL), 42 KB.
    Input {
        name: "mariadb-10.11-full.000001",
        rel: "mariadb-10.11/row-metadata-full/mariadb-bin.000001",
    },
    // 575 rows, mostly a wide table with big values, 276 KB.
    Input {
        name: "mariadb-10.11-full.000002",
        rel: "mariadb-10.11/row-metadata-full/mariadb-bin.000002",
    },
    // The Sakila sample database loaded in ROW format: 47 273 rows, 1.4 MB (stored gzipped; it is
    // inflated once to a temporary file so that inflation is not measured).
    Input {
        name: "mysql-sakila",
        rel: "mysql/mysql-binlog-connector-java/mysql-bin.sakila.gz",
    },
    // Statement-format only (no rows): measures framing and skipping, 3.7 MB.
    Input {
        name: "mariadb-poc-stmt.000002",
        rel: "mariadb-public/mariadb-poc/domain_id_0/mariadb-repl-bin.000002",
    },
];

/// A prepared input: the file to read, its size and how many rows/records it decodes to.
struct Prepared {
    name: String,
    path: PathBuf,
    bytes: u64,
    rows: u64,
    records: u64,
}

#[derive(Clone, Copy)]
enum Pipeline {
    Decode,
    Json,
    Avro,
}

impl Pipeline {
    const ALL: [Self; 3] = [Self::Decode, Self::Json, Self::Avro];

    fn name(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Json => "decode+json",
            Self::Avro => "decode+avro",
        }
    }
}

/// Decodes `path` completely through `pipeline`; returns the number of records (and, to keep the
/// work observable, folds the output lengths into `black_box`).
fn run(path: &Path, pipeline: Pipeline, line: &mut String, bin: &mut Vec<u8>) -> u64 {
    let mut reader =
        BinlogReader::open(&[path.to_path_buf()], BinlogOptions::default()).expect("open binlog");
    let mut records = 0u64;
    let mut out_bytes = 0usize;
    while let Some(rec) = reader.next_record().expect("decode binlog") {
        records += 1;
        match pipeline {
            Pipeline::Decode => {
                black_box(&rec);
            }
            Pipeline::Json => {
                line.clear();
                json::push_record(line, &rec, false);
                line.push('\n');
                out_bytes += black_box(line.len());
            }
            Pipeline::Avro => {
                bin.clear();
                bin.extend_from_slice(&[0; 4]);
                avro::write_record(bin, &rec);
                out_bytes += black_box(bin.len());
            }
        }
    }
    black_box(out_bytes);
    records
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs")
}

/// Resolves the inputs, inflating gzipped ones into `tmp`, and counts their rows once.
fn prepare(tmp: &Path) -> Vec<Prepared> {
    let mut inputs: Vec<(String, PathBuf)> = INPUTS
        .iter()
        .map(|i| (i.name.to_owned(), data_dir().join(i.rel)))
        .collect();
    if let Some(extra) = std::env::var_os("CHANGETRACK_BENCH_FILES") {
        for p in std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()) {
            let name = p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            inputs.push((format!("extra-{name}"), p));
        }
    }
    let mut out = Vec::new();
    for (name, src) in inputs {
        if !src.is_file() {
            eprintln!("skipping {name}: {} not found", src.display());
            continue;
        }
        let path = if src.extension().is_some_and(|e| e == "gz") {
            let mut raw = Vec::new();
            let f = std::fs::File::open(&src).expect("open gz");
            flate2::read::MultiGzDecoder::new(f)
                .read_to_end(&mut raw)
                .expect("inflate gz");
            let stem = src.file_stem().expect("file stem");
            let dst = tmp.join(format!("{}-{}", out.len(), stem.to_string_lossy()));
            std::fs::write(&dst, &raw).expect("write inflated binlog");
            dst
        } else {
            src
        };
        let bytes = std::fs::metadata(&path).expect("stat binlog").len();
        let mut reader = BinlogReader::open(std::slice::from_ref(&path), BinlogOptions::default())
            .expect("open binlog");
        let mut records = 0;
        while reader.next_record().expect("decode binlog").is_some() {
            records += 1;
        }
        let rows = reader.stats().rows;
        eprintln!("{name:<28} {bytes:>10} bytes {records:>8} records {rows:>8} rows");
        out.push(Prepared {
            name,
            path,
            bytes,
            rows,
            records,
        });
    }
    out
}

fn bench_group(c: &mut Criterion, group_name: &str, inputs: &[Prepared], rows: bool) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(2500));
    let mut line = String::with_capacity(1 << 16);
    let mut bin = Vec::with_capacity(1 << 16);
    for input in inputs {
        if rows {
            if input.rows == 0 {
                continue;
            }
            group.throughput(Throughput::Elements(input.rows));
        } else {
            group.throughput(Throughput::Bytes(input.bytes));
        }
        for pipeline in Pipeline::ALL {
            group.bench_with_input(
                BenchmarkId::new(pipeline.name(), &input.name),
                input,
                |b, input| {
                    b.iter(|| {
                        let n = run(&input.path, pipeline, &mut line, &mut bin);
                        debug_assert_eq!(n, input.records);
                        n
                    });
                },
            );
        }
    }
    group.finish();
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("changetrack-bench-decode-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create temp dir");
    let inputs = prepare(&tmp);
    let mut c = Criterion::default().configure_from_args();
    bench_group(&mut c, "bytes", &inputs, false);
    bench_group(&mut c, "rows", &inputs, true);
    c.final_summary();
    let _ = std::fs::remove_dir_all(&tmp);
}
