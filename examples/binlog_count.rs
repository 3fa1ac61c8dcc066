//! The library's decoder with no output: reads binlog files with [`changetrack::BinlogReader`],
//! decodes every row value, and prints only the counts (records, row changes, values) at the end.
//! The benchmarks (`benches/peers/run.sh`) time it next to `changetrack decode` and the peers'
//! decoders, which do the same work.
//!
//! ```text
//! cargo run --release --example binlog_count -- FILE [FILE...]
//! ```

use std::path::PathBuf;

use changetrack::{BinlogOptions, BinlogReader, Value};

fn main() -> std::process::ExitCode {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: binlog_count FILE [FILE...]");
        return std::process::ExitCode::from(2);
    }
    let reader = match BinlogReader::open(&files, BinlogOptions::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let (mut records, mut rows, mut values) = (0u64, 0u64, 0u64);
    for r in reader {
        match r {
            Ok(rec) => {
                records += 1;
                if rec.op.is_dml() {
                    rows += 1;
                }
                for image in [&rec.before, &rec.after].into_iter().flatten() {
                    values += image
                        .iter()
                        .filter(|v| !matches!(v, Value::Missing))
                        .count() as u64;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
    println!("records {records} rows {rows} values {values}");
    std::process::ExitCode::SUCCESS
}
