//! Consumer benchmarks.
//!
//! - `consume/poll`: a group's consumer reads every record of a store (about
//!   `CHANGETRACK_BENCH_CONSUME_RECORDS`, default 200 000, real records decoded from the corpus
//!   binlog `mariadb-10.11/row-metadata-full`, appended pass after pass) through
//!   `Consumer::poll`, from a fresh position each iteration (`seek`). Throughput: records/s.
//! - `wakeup/in-process`, `wakeup/cross-process` (not criterion measurements: raw samples,
//!   printed as `wakeup-percentiles` lines with p50/p90/p99/max): the time from just before
//!   a one-record append until the record is in the consumer's hands.
//!   - in-process: the consumer is a thread of the writer's process, blocked in `poll`;
//!   - cross-process: the consumer is `changetrack consume --follow` in another process
//!     (it polls the writer's tail file every millisecond), timed until its JSON line arrives
//!     on the pipe.
//!
//! Run: `cargo bench --bench consumer` (about a minute).

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use changetrack::record::Checkpoint;
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, StartAt, Store, StoreOptions, SyncMode,
};

const PW: &str = "Bench_pass1";
const WAKE_SAMPLES: usize = 1000;
const CROSS_SAMPLES: usize = 300;

fn corpus() -> Vec<ChangeRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    let files: Vec<PathBuf> = (1..=3)
        .map(|n| dir.join(format!("mariadb-bin.00000{n}")))
        .collect();
    BinlogReader::open(&files, BinlogOptions::default())
        .expect("open corpus")
        .collect::<Result<_, _>>()
        .expect("decode corpus")
}

fn fresh_store(name: &str) -> (PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!(
        "changetrack-bench-consumer-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(
        &dir,
        StoreOptions {
            sync: SyncMode::Never,
            ..StoreOptions::default()
        },
    )
    .expect("open store");
    (dir, store)
}

/// Appends passes of the corpus (file indexes moved forward each pass) up to `n` records.
fn fill(store: &Store, base: &[ChangeRecord], n: usize) {
    let mut pass = 0u32;
    while (store.last_seq() as usize) < n {
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
                r
            })
            .collect();
        store.append(&recs, None).expect("append");
        pass += 1;
    }
}

fn percentiles(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "wakeup-percentiles {name}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        v.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        v[v.len() - 1]
    );
}

fn one_record(base: &[ChangeRecord], i: usize) -> ChangeRecord {
    let r = base
        .iter()
        .filter(|r| r.op.is_dml())
        .nth(i % 100)
        .expect("a row record");
    let mut r = r.clone();
    r.checkpoint = Checkpoint::new(10_000 + u32::try_from(i).unwrap_or(0), 4);
    r
}

fn bench(c: &mut Criterion) {
    let base = corpus();
    let n = std::env::var("CHANGETRACK_BENCH_CONSUME_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);

    // Throughput.
    let (dir, store) = fresh_store("poll");
    fill(&store, &base, n);
    let total = store.last_seq();
    let id = store
        .groups()
        .expect("groups")
        .create("bench", "bench", PW)
        .expect("create group");
    let mut consumer = store
        .consumer(&id, "bench", PW, StartAt::Earliest)
        .expect("consumer");
    let mut g = c.benchmark_group("consume");
    g.sample_size(10);
    g.throughput(Throughput::Elements(total));
    g.bench_function("poll", |b| {
        b.iter(|| {
            consumer.seek(StartAt::Earliest).expect("seek");
            let mut k = 0u64;
            while let Some(r) = consumer.poll(Duration::ZERO).expect("poll") {
                black_box(&r);
                k += 1;
            }
            assert_eq!(k, total);
        });
    });
    g.finish();
    drop(consumer);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    // Wake-up latency within the writer's process.
    let (dir, store) = fresh_store("wake");
    store.append(&base[..10], None).expect("append");
    let id = store
        .groups()
        .expect("groups")
        .create("wake", "wake", PW)
        .expect("create group");
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let reader = {
        let store = store.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            let mut c = store
                .consumer(&id, "wake", PW, StartAt::Latest)
                .expect("consumer");
            for _ in 0..WAKE_SAMPLES {
                let r = c.poll(Duration::from_secs(10)).expect("poll");
                assert!(r.is_some(), "no wake-up");
                tx.send(Instant::now()).expect("send");
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut samples = Vec::with_capacity(WAKE_SAMPLES);
    for i in 0..WAKE_SAMPLES {
        let rec = one_record(&base, i);
        let t0 = Instant::now();
        store
            .append(std::slice::from_ref(&rec), None)
            .expect("append");
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("wake-up");
        samples.push(got.saturating_duration_since(t0));
        std::thread::sleep(Duration::from_micros(500));
    }
    reader.join().expect("reader");
    percentiles("in-process", samples);

    // Across processes: `changetrack consume --follow` in a child, from the committed position
    // (everything so far).
    {
        let mut c = store
            .consumer(&id, "wake", PW, StartAt::Latest)
            .expect("consumer");
        c.commit(changetrack::CommitAt::Seq(store.last_seq()))
            .expect("commit");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_changetrack"))
        .args(["consume", "--store"])
        .arg(&dir)
        .args(["--group", &id, "--user", "wake", "--follow"])
        .env("CHANGETRACK_PASSWORD", PW)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn changetrack consume");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = Vec::with_capacity(CROSS_SAMPLES);
    for i in 0..CROSS_SAMPLES {
        let rec = one_record(&base, WAKE_SAMPLES + i);
        let t0 = Instant::now();
        store
            .append(std::slice::from_ref(&rec), None)
            .expect("append");
        let line = lines.next().expect("a line").expect("read");
        samples.push(t0.elapsed());
        black_box(line);
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    percentiles("cross-process", samples);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
