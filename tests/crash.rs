//! Acceptance crash test of the store: `changetrack ingest` is SIGKILLed over and over at random
//! moments while it ingests a binlog of 1M+ row changes written by a real (private) MariaDB
//! server, then run to completion; the stored stream must be exactly the decoded stream, record
//! for record, with dense seqs and no gap or duplicate.
//!
//! - The binlogs come from `tests/support/make_binlog.sh` (needs `mariadbd`; CI installs it):
//!   1000-row INSERT transactions, UPDATEs, DELETEs, DDL, and two large transactions (100 000
//!   and 150 000 row changes), so the store's chunked large-transaction path is exercised.
//! - Kill delays come from an xorshift PRNG seeded from the clock (printed; set
//!   `CHANGETRACK_CRASH_SEED` to draw the same delays again; the timing still varies). They are
//!   paced so that the kills spread over the whole ingestion; some land during start-up (open,
//!   recovery); when the committed tail is at the start of a large transaction, the next runs
//!   are killed at a random moment inside it; a run that made no progress makes the next delays
//!   longer, so the test always finishes.
//! - After every kill, `changetrack stats` gives the committed tail: it must never go back and
//!   must always be at a transaction boundary of the decoded stream. The next run's open-time
//!   recovery log ("removing records of an uncommitted transaction") proves that a kill landed
//!   inside a large transaction, after some of its chunks were written.
//! - Streams are compared by a 64-bit hash per line (memory: 8 bytes per record); on a
//!   mismatch the differing lines are fetched again and printed.
//! - Then: a repeated ingest stores nothing, `changetrack stats` counts exactly the records, and
//!   dumps from sampled checkpoints and times start at the right record (the indexes).
//!
//! Environment: `CHANGETRACK_CRASH_SEED` (the PRNG seed), `CHANGETRACK_CRASH_KEEP=1` (keep the
//! temporary directory: binlogs, store, logs; it is kept anyway when the test fails).

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
/// The store's `StoreOptions::chunk_records` default: larger transactions are written in chunks.
const CHUNK_RECORDS: u64 = 10_000;
/// Kills after which the tail advanced that the schedule is paced for: the stream is spread over
/// them. Kills without progress (start-up, large transactions) come on top. The test asserts at
/// least `MIN_KILLS` kills in all.
const PACED_KILLS: u32 = 80;
const MIN_KILLS: u32 = 50;
/// A safety net: the kill phase gives up (and fails) after this long.
const KILL_PHASE_LIMIT: Duration = Duration::from_secs(420);

/// xorshift64* (Vigna).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A temporary directory, removed at the end unless the test failed (or KEEP is set).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CHANGETRACK_CRASH_KEEP").is_some() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn find_mariadbd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("mariadbd"))
        .find(|p| p.is_file())
}

/// The hash of a record's JSON without its leading `{` (and, for dumped lines, without the
/// `"seq":N,` key), so decoded and dumped lines hash alike.
fn line_hash(body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(body);
    h.finish()
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Splits a dumped line `{"seq":N,REST` into `N` and `REST`.
fn split_seq(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",")?;
    Some((seq, rest))
}

/// The raw value of a top-level key that comes early in a record line (`"op":"` gives `INSERT`,
/// `"timestamp":` gives the digits).
fn field<'a>(line: &'a [u8], key: &[u8]) -> &'a [u8] {
    let head = &line[..line.len().min(400)];
    let Some(at) = head.windows(key.len()).position(|w| w == key) else {
        return b"";
    };
    let v = &head[at + key.len()..];
    &v[..v.iter().position(|&b| b == b'"' || b == b',').unwrap_or(0)]
}

fn op_of(line: &[u8]) -> &[u8] {
    field(line, b"\"op\":\"")
}

fn show(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], line.len())
    } else {
        s.into_owned()
    }
}

/// What the decoded stream looks like.
struct Expected {
    /// Hash per record (index = seq - 1).
    hashes: Vec<u64>,
    /// `is_boundary[seq]`: a committed tail at `seq` is a transaction boundary (seq 0: empty).
    is_boundary: Vec<bool>,
    /// Transactions of more than `CHUNK_RECORDS` records: (first seq, last seq).
    large: Vec<(u64, u64)>,
    /// Each distinct checkpoint (`offset@file`) and the seq of its first record.
    checkpoints: Vec<(String, u64)>,
    /// Each new maximum of the record timestamps and the seq of the record that reached it.
    times: Vec<(u32, u64)>,
}

fn decode_expected(files: &[PathBuf], log: &Path) -> Expected {
    let mut child = Command::new(BIN)
        .args(["decode", "--format", "jsonl"])
        .args(files)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("cannot run changetrack decode");
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut exp = Expected {
        hashes: Vec::with_capacity(1 << 21),
        is_boundary: vec![true],
        large: Vec::new(),
        checkpoints: Vec::new(),
        times: Vec::new(),
    };
    let mut line = Vec::with_capacity(4096);
    let mut txn_start: Option<u64> = None;
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        let l = trim_newline(&line);
        assert!(
            l.starts_with(b"{"),
            "decode printed a non-JSON line: {}",
            show(l)
        );
        exp.hashes.push(line_hash(&l[1..]));
        let seq = exp.hashes.len() as u64;
        let cp = field(l, b"\"checkpoint\":\"");
        if exp
            .checkpoints
            .last()
            .is_none_or(|(c, _)| c.as_bytes() != cp)
        {
            exp.checkpoints
                .push((String::from_utf8_lossy(cp).into_owned(), seq));
        }
        let ts: u32 = std::str::from_utf8(field(l, b"\"timestamp\":"))
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no timestamp in {}", show(l)));
        if exp.times.last().is_none_or(|&(t, _)| ts > t) {
            exp.times.push((ts, seq));
        }
        let boundary = match op_of(l) {
            b"BEGIN" => {
                txn_start = Some(seq);
                false
            }
            b"COMMIT" => {
                if let Some(s) = txn_start.take() {
                    if seq - s + 1 > CHUNK_RECORDS {
                        exp.large.push((s, seq));
                    }
                }
                true
            }
            // A statement outside a transaction (DDL) is a transaction of its own.
            _ => txn_start.is_none(),
        };
        exp.is_boundary.push(boundary);
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "changetrack decode failed ({status}): {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    exp
}

/// Line `index` (0-based) of a command's output, for diagnostics.
fn nth_line(cmd: &mut Command, index: u64) -> Vec<u8> {
    let Ok(mut child) = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn() else {
        return b"(cannot run the command)".to_vec();
    };
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = Vec::new();
    let mut found = b"(no such line)".to_vec();
    for i in 0.. {
        line.clear();
        match out.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if i == index => {
                found = trim_newline(&line).to_vec();
                break;
            }
            Ok(_) => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    found
}

/// The committed tail (`seq range: A..B` of `changetrack stats`). `before` is the tail seen last.
fn committed_seq(store: &Path, before: u64) -> u64 {
    let out = Command::new(BIN)
        .args(["stats", "--store"])
        .arg(store)
        .output()
        .expect("cannot run changetrack stats");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // An ingest killed while it created the store may leave nothing readable yet; once
        // something was committed, the store must always open.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            before == 0,
            "changetrack stats failed ({}): {err}",
            out.status
        );
        eprintln!("(no readable store yet: {})", err.trim());
        return 0;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("seq range:"))
        .and_then(|r| r.trim().split_once(".."))
        .and_then(|(_, last)| last.parse().ok())
        .unwrap_or_else(|| panic!("unexpected changetrack stats output: {text}"))
}

/// `from=A to=B` of the open-time recovery log line, if the run removed uncommitted records.
fn recovered_range(log: &str) -> Option<(u64, u64)> {
    let line = log
        .lines()
        .find(|l| l.contains("removing records of an uncommitted transaction"))?;
    let field = |name: &str| -> Option<u64> {
        let at = line.find(name)? + name.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((field("from=")?, field("to=")?))
}

fn ingest_cmd(store: &Path, files: &[PathBuf]) -> Command {
    let mut c = Command::new(BIN);
    // Smaller batches than the defaults (100 000 records / 50 ms): more commits, so that the
    // kills spread over more distinct committed positions.
    c.args([
        "-v",
        "ingest",
        "--batch-records",
        "20000",
        "--batch-latency-ms",
        "5",
        "--store",
    ])
    .arg(store)
    .args(files);
    c
}

fn spawn_ingest(store: &Path, files: &[PathBuf], log: &Path) -> Child {
    ingest_cmd(store, files)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("cannot run changetrack ingest")
}

/// Waits for the child up to `delay`; kills it (SIGKILL) if it is still running. Returns its
/// exit status if it ended by itself.
fn kill_after(child: &mut Child, delay: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + delay;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
    // `Child::kill` sends SIGKILL on Unix. The child may have exited in the meantime.
    let _ = child.kill();
    let st = child.wait().unwrap();
    if st.code().is_some() {
        // It exited on its own just before the kill.
        return Some(st);
    }
    None
}

/// `ingested T transactions, R records, ...`: R.
fn ingested_records(stdout: &str) -> Option<u64> {
    let rest = stdout.split("transactions, ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[test]
fn ingest_survives_sigkill_at_random_moments() {
    let t_all = Instant::now();
    assert!(
        find_mariadbd().is_some(),
        "mariadbd not found (in PATH or /usr/sbin): this test generates its binlogs with a private \
         MariaDB server; install mariadb-server and mariadb-client (.ci/run does)"
    );
    let dir = TempDir(std::env::temp_dir().join(format!("ct-crash-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let binlogs = dir.0.join("binlogs");
    let store = dir.0.join("store");
    let run_log = |n: u32| dir.0.join(format!("ingest-{}.log", n % 2));

    // 1. The binlogs.
    let t = Instant::now();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_binlog.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&binlogs)
        .arg("1000000")
        .output()
        .expect("cannot run tests/support/make_binlog.sh");
    let script_log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "make_binlog.sh failed ({}):\n{script_log}",
        out.status
    );
    let files: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert!(!files.is_empty(), "make_binlog.sh printed no binlog file");
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprint!("{script_log}");
    eprintln!(
        "binlogs: {} files, {:.1} MB, generated in {:.1} s",
        files.len(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // 2. The expected stream.
    let t = Instant::now();
    let exp = decode_expected(&files, &dir.0.join("decode.log"));
    let n = exp.hashes.len() as u64;
    eprintln!(
        "decoded {n} records in {:.1} s; large transactions (> {CHUNK_RECORDS} records): {:?}",
        t.elapsed().as_secs_f64(),
        exp.large
    );
    assert!(n > 1_000_000, "expected 1M+ records, decoded {n}");
    assert!(
        exp.large.iter().any(|&(a, b)| b - a + 1 >= 100_000),
        "no transaction of 100 000+ records in the workload"
    );

    // 3. Kill, restart, kill...
    let seed = std::env::var("CHANGETRACK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)) | 1
        });
    eprintln!(
        "kill schedule seed: {seed} (draw the same delays with CHANGETRACK_CRASH_SEED={seed})"
    );
    let mut rng = Rng(seed);
    let t_kills = Instant::now();
    let mut kills = 0u32;
    let mut runs = 0u32;
    let mut early_kills = 0u32;
    let mut progress_kills = 0u32;
    let mut stalled_kills = 0u32;
    // Kills whose next run found (and removed) chunks of an uncommitted large transaction.
    let mut inside_large: Vec<(u32, u64, u64)> = Vec::new();
    let mut other_chunks = 0u32;
    // Kills after which the committed tail was right before a large transaction.
    let mut before_large = 0u32;
    let mut committed = 0u64;
    // Records per second of child run time, measured (runs with progress only).
    let (mut run_secs, mut run_records) = (0f64, 0u64);
    // The fastest rate seen, start-up (~0.1 s) aside.
    let mut fastest = 0f64;
    // Lower bound of the delay, raised while runs make no progress (large transactions).
    let mut floor = 0.02f64;
    let mut completed_early = false;
    // Runs started from the current committed tail.
    let mut tries_here = 0u32;
    while progress_kills < PACED_KILLS {
        assert!(
            t_kills.elapsed() < KILL_PHASE_LIMIT,
            "the kill phase took more than {KILL_PHASE_LIMIT:?} ({kills} kills, tail at seq \
             {committed} of {n})"
        );
        let remaining = (n - committed) as f64;
        let kills_left = f64::from(PACED_KILLS - progress_kills);
        let rate = if run_records > 0 {
            run_records as f64 / run_secs
        } else {
            50_000.0
        };
        let large_next = exp.large.iter().find(|&&(a, _)| a == committed + 1);
        let early = rng.unit() < 0.08;
        let delay = if early {
            // During start-up: opening the store, open-time recovery, the first reads.
            rng.unit() * 0.06
        } else if let (Some(&(a, b)), true) = (large_next, tries_here < 3) {
            // The run starts with a large transaction: a random moment inside it (start-up
            // time, then a fraction of the time its records take at the fastest rate seen).
            // A writer's open checks the whole store first (every block is read back), so the
            // start-up grows with the store: estimated from a reader's open of it now.
            let t = Instant::now();
            let _ = Command::new(BIN)
                .args(["stats", "--store"])
                .arg(&store)
                .output();
            let startup = 0.1 + 1.5 * t.elapsed().as_secs_f64();
            startup + (0.05 + 0.9 * rng.unit()) * (b - a + 1) as f64 / fastest.max(rate)
        } else {
            let target = remaining / kills_left / rate;
            (target * (0.3 + 1.4 * rng.unit())).max(floor * (1.0 + 0.3 * rng.unit()))
        }
        .clamp(0.0, 20.0);
        let log = run_log(runs);
        let mut child = spawn_ingest(&store, &files, &log);
        runs += 1;
        let started = Instant::now();
        let ended = kill_after(&mut child, Duration::from_secs_f64(delay));
        let lived = started.elapsed().as_secs_f64();
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some((from, to)) = recovered_range(&log_text) {
            // The previous run was killed after it had written chunks of records that it had not
            // committed: they sat right past the committed tail.
            assert_eq!(
                from,
                committed + 1,
                "run {runs} removed uncommitted records {from}..{to}, but the committed tail \
                 is {committed}"
            );
            if inside_large
                .last()
                .is_some_and(|&(_, f, t)| (f, t) == (from, to))
            {
                // The same chunks again: the run that removed them was killed before it
                // committed the removal.
            } else if exp.large.iter().any(|&(a, b)| a <= from && to <= b) {
                inside_large.push((kills, from, to));
            } else {
                // A chunk of a group commit of small transactions (a batch can hold more
                // records than a chunk).
                other_chunks += 1;
            }
        }
        if let Some(st) = ended {
            assert!(
                st.success(),
                "changetrack ingest failed ({st}) after {kills} kills:\n{log_text}"
            );
            completed_early = true;
            eprintln!(
                "run {runs}: ingestion completed after {lived:.3} s, before its kill (delay \
                 {delay:.3} s)"
            );
            break;
        }
        kills += 1;
        let now = committed_seq(&store, committed);
        assert!(
            now >= committed,
            "kill {kills}: the committed tail went back from seq {committed} to {now}"
        );
        assert!(
            now <= n,
            "kill {kills}: the committed tail (seq {now}) is past the decoded stream ({n} records)"
        );
        assert!(
            exp.is_boundary[now as usize],
            "kill {kills}: the committed tail (seq {now}) is not at a transaction boundary of the \
             decoded stream"
        );
        if exp.large.iter().any(|&(a, _)| a == now + 1) {
            before_large += 1;
        }
        let advanced = now - committed;
        eprintln!(
            "kill {kills:3}: after {lived:6.3} s (delay {delay:6.3} s{}), committed seq {now:8} \
             (+{advanced})",
            if early { ", early" } else { "" }
        );
        if early {
            early_kills += 1;
        } else if advanced > 0 {
            progress_kills += 1;
            run_secs += lived;
            run_records += advanced;
            fastest = fastest.max(advanced as f64 / (lived - 0.1).max(0.05));
            floor = 0.02;
        } else {
            stalled_kills += 1;
            // No progress: the run did not get through a (large) transaction. Longer next time.
            floor = (floor.max(delay) * 1.3).min(20.0);
        }
        tries_here = if advanced > 0 { 0 } else { tries_here + 1 };
        committed = now;
    }
    let kill_secs = t_kills.elapsed().as_secs_f64();

    // 4. To completion.
    let t = Instant::now();
    let out = ingest_cmd(&store, &files).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the final changetrack ingest failed ({}):\n{err}",
        out.status
    );
    if let Some((from, to)) = recovered_range(&err) {
        assert_eq!(from, committed + 1, "the final run removed {from}..{to}");
        if exp.large.iter().any(|&(a, b)| a <= from && to <= b)
            && inside_large
                .last()
                .is_none_or(|&(_, f, t)| (f, t) != (from, to))
        {
            inside_large.push((kills, from, to));
        }
    }
    let final_stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "final ingest: {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        final_stdout.trim()
    );
    // Once more: nothing left to store.
    let out = ingest_cmd(&store, &files).output().unwrap();
    assert!(out.status.success(), "the repeated ingest failed");
    let again = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        ingested_records(&again),
        Some(0),
        "a repeated ingest stored more records: {again}"
    );

    // 5. The stored stream against the decoded one.
    let t = Instant::now();
    let dump = || {
        let mut c = Command::new(BIN);
        c.args(["dump", "--format", "jsonl", "--store"]).arg(&store);
        c
    };
    let dump_log = dir.0.join("dump.log");
    let mut child = dump()
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&dump_log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut line = Vec::with_capacity(4096);
    let mut got = 0u64;
    let mut mismatch: Option<(u64, String)> = None;
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        let l = trim_newline(&line);
        let Some((seq, body)) = split_seq(l) else {
            mismatch = Some((got, format!("not a dumped record line: {}", show(l))));
            break;
        };
        if seq != got + 1 {
            mismatch = Some((
                got,
                format!(
                    "seq {seq} where {} was due (seqs must be 1..=n, dense)",
                    got + 1
                ),
            ));
            break;
        }
        if exp.hashes.get(got as usize) != Some(&line_hash(body)) {
            mismatch = Some((got, "the records differ".into()));
            break;
        }
        got += 1;
    }
    if mismatch.is_some() {
        let _ = child.kill();
    } else {
        // Drain (nothing left) and check the exit status.
        let _ = out.read_to_end(&mut Vec::new());
    }
    let status = child.wait().unwrap();
    let compare_secs = t.elapsed().as_secs_f64();
    if mismatch.is_none() && got != n {
        mismatch = Some((
            got,
            format!("the store holds {got} records, the decoded stream {n}"),
        ));
    }
    if let Some((i, why)) = mismatch {
        let mut dec = Command::new(BIN);
        dec.args(["decode", "--format", "jsonl"]).args(&files);
        let want = nth_line(&mut dec, i);
        let have = nth_line(&mut dump(), i);
        // Where the dumped record really belongs, if near: a duplicate or a gap.
        let body = split_seq(&have).map_or(&have[..], |(_, b)| b);
        let h = line_hash(body);
        let lo = i.saturating_sub(200_000) as usize;
        let hi = ((i + 200_000) as usize).min(exp.hashes.len());
        let near: Vec<u64> = (lo..hi)
            .filter(|&j| exp.hashes[j] == h)
            .map(|j| j as u64 + 1)
            .take(5)
            .collect();
        panic!(
            "the stored stream differs from the decoded stream at index {i} (seq {}): {why}\n\
             decoded: {}\n\
             dumped:  {}\n\
             the dumped record equals decoded seq(s) {near:?} (within 200 000)\n\
             seed {seed}, {kills} kills; large transactions {:?}; store {}",
            i + 1,
            show(&want),
            show(&have),
            exp.large,
            store.display()
        );
    }
    assert!(
        status.success(),
        "changetrack dump failed ({status}): {}",
        std::fs::read_to_string(&dump_log).unwrap_or_default()
    );

    // 6. The counters and the indexes, rebuilt across the kills: the first record dumped from a
    // checkpoint or a time must be the first one at it.
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["stats", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stats.contains(&format!("records:      {n}\n"))
            && stats.contains(&format!("seq range:    1..{n}\n")),
        "changetrack stats disagrees with the {n} records stored ({}):\n{stats}",
        out.status
    );
    let mut probes: Vec<(String, u64)> = Vec::new();
    let cps = &exp.checkpoints;
    for &(a, b) in &exp.large {
        // A large transaction's first record, one inside it, and the record after it.
        let inside = a + 1 + rng.next_u64() % (b - a);
        for want in [a, inside, b + 1] {
            let i = cps.partition_point(|&(_, s)| s <= want).saturating_sub(1);
            if let Some((cp, first)) = cps.get(i) {
                probes.push((format!("--from-checkpoint={cp}"), *first));
            }
        }
    }
    for _ in 0..8 {
        let (cp, first) = &cps[(rng.next_u64() % cps.len() as u64) as usize];
        probes.push((format!("--from-checkpoint={cp}"), *first));
    }
    for _ in 0..4 {
        let (ts, first) = exp.times[(rng.next_u64() % exp.times.len() as u64) as usize];
        probes.push((format!("--from-time={ts}"), first));
    }
    for (arg, want) in &probes {
        let mut c = Command::new(BIN);
        c.args(["dump", "--format", "jsonl", arg.as_str(), "--store"])
            .arg(&store);
        let first = nth_line(&mut c, 0);
        assert_eq!(
            split_seq(&first).map(|(s, _)| s),
            Some(*want),
            "dump {arg} starts at the wrong record: {}",
            show(&first)
        );
    }
    eprintln!(
        "stats and {} index probes (checkpoint, time) agree: {:.1} s",
        probes.len(),
        t.elapsed().as_secs_f64()
    );

    eprintln!(
        "crash test: seed {seed}; {kills} kills in {runs} runs ({kill_secs:.1} s): {progress_kills} \
         after progress, {stalled_kills} without progress, {early_kills} during start-up; {} \
         inside a large transaction after chunks were written (kill, removed from, to) \
         {inside_large:?}; {other_chunks} after chunks of group-committed small transactions; \
         {before_large} with the tail right before a large transaction",
        inside_large.len()
    );
    eprintln!(
        "stored stream == decoded stream: {n} records, seqs 1..={n}; compared in {compare_secs:.1} \
         s; total {:.1} s",
        t_all.elapsed().as_secs_f64()
    );
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills (ingestion completed before its kill: {completed_early})"
    );
    assert!(
        !inside_large.is_empty(),
        "no kill landed inside a large transaction after its first chunk (seed {seed})"
    );
}
