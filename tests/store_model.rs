//! A model-based test of the store (issue 13), in the manner of redb's fuzzer that injects I/O
//! errors: random interleavings of appends (small and chunked transactions), injected write and
//! sync failures, retention, reopen with other options, small chunk sizes (so large
//! transactions are written in invisible chunks and an abandoned one must be rolled back), and
//! reads of every kind, checked after every step against an in-memory model.
//!
//! Invariants: the stored records are exactly the model's from the oldest kept seq on; seqs are
//! dense; the oldest kept seq is a transaction start; a failed append leaves either nothing or
//! (failed sync only: the write reached the log) the whole transaction; retention only removes
//! whole transactions from the oldest end and never the newest one.
//!
//! Seeds: `CHANGETRACK_MODEL_SEED` replays one seed; otherwise the seeds that once found a bug
//! and a few seeds from the clock (printed). `CHANGETRACK_MODEL_STEPS` sets the steps per seed (default 400).

#![cfg(feature = "failpoints")]

use std::path::{Path, PathBuf};

use changetrack::store::{failpoints, ReadFrom};
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, Checkpoint, ErrorKind, Retention, Store,
    StoreOptions,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Row records of the corpus, to be re-stamped with increasing checkpoints and times.
fn templates() -> Vec<ChangeRecord> {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000001");
    BinlogReader::open(&[f], BinlogOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .into_iter()
        .filter(|r| r.table.is_some())
        .collect()
}

/// What the store must hold: `(checkpoint, timestamp)` per seq (index 0 = seq 1), the oldest
/// kept seq, and transaction starts.
#[derive(Default)]
struct Model {
    records: Vec<(Checkpoint, u32)>,
    oldest: u64,
    starts: Vec<u64>,
}

struct Gen {
    templates: Vec<ChangeRecord>,
    next_offset: u64,
    ts: u32,
}

impl Gen {
    fn txn(&mut self, rng: &mut Rng, n: usize) -> Vec<ChangeRecord> {
        let mut out = Vec::with_capacity(n);
        self.ts += rng.below(3) as u32;
        for _ in 0..n {
            let t = &self.templates[rng.below(self.templates.len() as u64) as usize];
            let mut r = t.clone();
            self.next_offset += 1 + rng.below(40);
            r.checkpoint = Checkpoint::new(1, self.next_offset);
            r.safe_checkpoint = r.checkpoint;
            r.timestamp = self.ts;
            out.push(r);
        }
        out
    }
}

fn opts(rng: &mut Rng) -> StoreOptions {
    StoreOptions {
        chunk_records: [8, 64, 10_000][rng.below(3) as usize],
        retention: Retention {
            max_age: None,
            max_bytes: (rng.below(4) == 0).then(|| 20_000 + rng.below(200_000)),
        },
        ..StoreOptions::default()
    }
}

fn verify(store: &Store, m: &Model, rng: &mut Rng, step: usize) {
    let last = m.records.len() as u64;
    assert_eq!(store.last_seq(), last, "step {step}: last seq");
    let oldest = store.oldest_seq().unwrap().unwrap_or(0);
    if last == 0 {
        assert_eq!(oldest, 0);
        return;
    }
    assert_eq!(oldest, m.oldest.max(1), "step {step}: oldest seq");
    assert!(
        m.starts.contains(&oldest),
        "step {step}: the oldest kept seq {oldest} is not a transaction start"
    );
    let mut seq = oldest;
    for r in store.iter(ReadFrom::Earliest).unwrap() {
        let r = r.unwrap_or_else(|e| panic!("step {step}: read: {e}"));
        let (cp, ts) = m.records[(seq - 1) as usize];
        assert_eq!(
            (r.seq, r.checkpoint, r.timestamp),
            (seq, cp, ts),
            "step {step}"
        );
        seq += 1;
    }
    assert_eq!(seq, last + 1, "step {step}: the scan ended early");
    for _ in 0..5 {
        let s = oldest + rng.below(last - oldest + 1);
        assert_eq!(
            store.get(s).unwrap().checkpoint,
            m.records[(s - 1) as usize].0
        );
        let first = store
            .iter(ReadFrom::Seq(s))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(first.seq, s);
        let cp = m.records[(s - 1) as usize].0;
        let at = store
            .iter(ReadFrom::Checkpoint(cp))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(at.checkpoint, cp, "step {step}: seek to {cp}");
    }
    if oldest > 1 {
        let e = store.get(oldest - 1).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "step {step}: {e}");
    }
}

fn run_seed(seed: u64, steps: usize, templates: &[ChangeRecord]) {
    let dir: PathBuf = std::env::temp_dir().join(format!("ct-model-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = Rng(seed | 1);
    let mut gen = Gen {
        templates: templates.to_vec(),
        next_offset: 4,
        ts: 1_700_000_000,
    };
    let mut m = Model::default();
    let mut store = Some(Store::open(&dir, opts(&mut rng)).unwrap());
    // A transaction whose sync failed: stored whole or not at all, known at the reopen.
    let mut maybe: Option<Vec<(Checkpoint, u32)>> = None;
    for step in 0..steps {
        let s = store.as_ref().unwrap();
        match rng.below(100) {
            0..=59 => {
                let n = if rng.below(10) == 0 {
                    100 + rng.below(300) as usize
                } else {
                    1 + rng.below(20) as usize
                };
                let txn = gen.txn(&mut rng, n);
                let (first, last) = s.append(&txn, None).unwrap();
                assert_eq!(first, m.records.len() as u64 + 1, "step {step}");
                assert_eq!(last - first + 1, n as u64);
                m.starts.push(first);
                m.records
                    .extend(txn.iter().map(|r| (r.checkpoint, r.timestamp)));
            }
            60..=69 => {
                let point = if rng.below(2) == 0 {
                    failpoints::BEFORE_WRITE
                } else {
                    failpoints::SYNC
                };
                let n = 1 + rng.below(30) as usize;
                let txn = gen.txn(&mut rng, n);
                failpoints::arm(point);
                let e = s.append(&txn, None).expect_err("an armed failure");
                assert_eq!(e.kind(), ErrorKind::Io, "step {step}: {e}");
                assert_eq!(
                    s.append(&txn, None).err().map(|e| e.kind()),
                    Some(ErrorKind::Poisoned)
                );
                if point == failpoints::SYNC {
                    maybe = Some(txn.iter().map(|r| (r.checkpoint, r.timestamp)).collect());
                }
                // Reads go on after a failure and show what was acknowledged.
                verify_prefix(s, &m, step);
                drop(store.take());
                store = Some(reopen(&dir, &mut rng, &mut m, &mut maybe));
            }
            70..=79 => {
                let removed = s.trim().unwrap();
                if removed > 0 {
                    // Recompute from the store: retention removed whole transactions.
                    let oldest = s.oldest_seq().unwrap().unwrap();
                    assert!(oldest > m.oldest.max(1), "step {step}");
                    assert!(
                        oldest <= *m.starts.last().unwrap(),
                        "step {step}: retention removed the newest transaction"
                    );
                    m.oldest = oldest;
                }
            }
            80..=89 => {
                drop(store.take());
                store = Some(reopen(&dir, &mut rng, &mut m, &mut maybe));
            }
            _ => {}
        }
        verify(store.as_ref().unwrap(), &m, &mut rng, step);
    }
    drop(store);
    let r = Store::check(&dir, true).unwrap();
    assert!(r.is_ok(), "seed {seed}: check --deep: {:?}", r.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The records acknowledged so far are readable through a poisoned handle.
fn verify_prefix(s: &Store, m: &Model, step: usize) {
    let last = m.records.len() as u64;
    if last > 0 {
        assert_eq!(
            s.get(last).unwrap().checkpoint,
            m.records[(last - 1) as usize].0,
            "step {step}"
        );
    }
}

fn reopen(
    dir: &Path,
    rng: &mut Rng,
    m: &mut Model,
    maybe: &mut Option<Vec<(Checkpoint, u32)>>,
) -> Store {
    let s = Store::open(dir, opts(rng)).unwrap();
    if let Some(txn) = maybe.take() {
        let last = s.last_seq();
        let before = m.records.len() as u64;
        if last == before + txn.len() as u64 {
            m.starts.push(before + 1);
            m.records.extend(txn);
        } else {
            assert_eq!(last, before, "a failed sync left part of a transaction");
        }
    }
    s
}

#[test]
fn the_store_matches_its_model_under_random_faults() {
    let templates = templates();
    assert!(!templates.is_empty());
    let steps = std::env::var("CHANGETRACK_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let seeds: Vec<u64> = match std::env::var("CHANGETRACK_MODEL_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            // Seeds that found bugs, then fresh ones. 1796323516464459531: the first transaction
            // failed after a chunk was written, and the reopen took the store for one whose
            // tail was lost.
            [1_796_323_516_464_459_531]
                .into_iter()
                .chain((0..3).map(|i| t.wrapping_add(i * 0x9e37_79b9)))
                .collect()
        }
    };
    for seed in seeds {
        eprintln!("model seed {seed} (CHANGETRACK_MODEL_SEED={seed} replays it)");
        run_seed(seed, steps, &templates);
    }
}
