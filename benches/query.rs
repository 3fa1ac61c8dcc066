//! Query latency on a store of about a million records (`CHANGETRACK_BENCH_QUERY_RECORDS`,
//! default 1 000 000): the corpus binlog `mariadb-10.11/row-metadata-full` appended pass after
//! pass (each pass one second later), then:
//!
//! - `query/one-table-newest-20`: the default page (20 newest) of one table over all the data;
//! - `query/one-table-all`: every record of that table (about 2% of the store) in one page;
//! - `query/one-table-one-second`: one table within a one-second window in the middle;
//! - `query/all-tables-newest-20`: the default query (last minute, newest first, 20).
//!
//! Each iteration prints nothing; the setup line gives records and the table's share.
//! Run: `cargo bench --bench query`.

use std::hint::black_box;
use std::path::Path;

use criterion::Criterion;

use changetrack::query::Query;
use changetrack::record::Checkpoint;
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, Store, StoreOptions, SyncMode};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    let files: Vec<_> = (1..=3)
        .map(|n| dir.join(format!("mariadb-bin.00000{n}")))
        .collect();
    let base: Vec<ChangeRecord> = BinlogReader::open(&files, BinlogOptions::default())
        .expect("open corpus")
        .collect::<Result<_, _>>()
        .expect("decode corpus");
    let n: u64 = std::env::var("CHANGETRACK_BENCH_QUERY_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let sdir = std::env::temp_dir().join(format!("changetrack-bench-query-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sdir);
    let store = Store::open(
        &sdir,
        StoreOptions {
            sync: SyncMode::Never,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    let mut pass = 0u32;
    while store.last_seq() < n {
        let recs: Vec<ChangeRecord> = base
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.checkpoint =
                    Checkpoint::new(r.checkpoint.file_index + pass * 3, r.checkpoint.offset);
                r.safe_checkpoint = Checkpoint::new(
                    r.safe_checkpoint.file_index + pass * 3,
                    r.safe_checkpoint.offset,
                );
                r.timestamp += pass;
                r
            })
            .collect();
        store.append(&recs, None).expect("append");
        pass += 1;
    }
    let all_t_int = store
        .query(&Query {
            table: Some("corpus.t_int".into()),
            from_time: Some(0),
            limit: 100_000,
            ..Query::default()
        })
        .expect("query");
    println!(
        "setup: {} records in {pass} passes; corpus.t_int has {} ({:.1}%), read {} to find them",
        store.last_seq(),
        all_t_int.records.len(),
        all_t_int.records.len() as f64 * 100.0 / store.last_seq() as f64,
        all_t_int.visited
    );
    let mid = base[0].timestamp + pass / 2;
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("query");
    g.sample_size(20);
    let cases: Vec<(&str, Query)> = vec![
        (
            "one-table-newest-20",
            Query {
                table: Some("corpus.t_int".into()),
                from_time: Some(0),
                ..Query::default()
            },
        ),
        (
            "one-table-all",
            Query {
                table: Some("corpus.t_int".into()),
                from_time: Some(0),
                limit: 100_000,
                ..Query::default()
            },
        ),
        (
            "one-table-one-second",
            Query {
                table: Some("corpus.t_int".into()),
                from_time: Some(mid),
                to_time: Some(mid),
                limit: 100_000,
                ..Query::default()
            },
        ),
        ("all-tables-newest-20", Query::default()),
    ];
    for (name, q) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(store.query(q).expect("query").records.len()));
        });
    }
    g.finish();
    c.final_summary();
    drop(store);
    let _ = std::fs::remove_dir_all(&sdir);
}
