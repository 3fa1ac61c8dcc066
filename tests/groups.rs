//! Consumer groups through the public API and the CLI: credentials, commits, one active
//! consumer with standby takeover (threads and processes, kill -9 and a hung process),
//! concurrent groups during ingestion, object changes mid-stream, heartbeats.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use changetrack::filter::{ObjectAction, ObjectChange};
use changetrack::group::{validate_password, validate_username};
use changetrack::store::{request_object_change, ReadFrom};
use changetrack::{
    ingest, BinlogOptions, BinlogReader, ChangeRecord, CommitAt, ConsumerOptions, ErrorKind,
    IngestOptions, Op, StartAt, Store, StoreOptions, SyncMode,
};

#[path = "support/threads.rs"]
mod threads;

#[path = "support/proc.rs"]
mod proc;
use proc::Proc;
use threads::{threads_named, StopOnDrop};

const PW: &str = "Secret_pass1";
const BIN: &str = env!("CARGO_BIN_EXE_changetrack");

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs")
        .join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-groups-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn full_variant() -> Vec<PathBuf> {
    (1..=3)
        .map(|n| {
            data(&format!(
                "mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
            ))
        })
        .collect()
}

fn decode(paths: &[PathBuf]) -> Vec<ChangeRecord> {
    BinlogReader::open(paths, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn never_sync() -> StoreOptions {
    StoreOptions {
        sync: SyncMode::Never,
        ..StoreOptions::default()
    }
}

/// A store holding the first `files` files of the full variant.
fn store_with(name: &str, files: usize) -> (PathBuf, Store) {
    let dir = tmp(name);
    let store = Store::open(&dir, never_sync()).unwrap();
    ingest(
        &store,
        &full_variant()[..files],
        &IngestOptions::default(),
        None,
        &mut |_| {},
    )
    .unwrap();
    (dir, store)
}

fn quick() -> ConsumerOptions {
    ConsumerOptions {
        session_timeout: Duration::from_secs(2),
        ..ConsumerOptions::default()
    }
}

/// Everything under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn credential_rules() {
    for (u, ok) in [
        ("a", true),
        ("app_user_01", true),
        ("ABCDEFGHIJKLMNOP", true),
        ("ABCDEFGHIJKLMNOPQ", false),
        ("", false),
        ("has space", false),
        ("dash-ed", false),
        ("ümlaut", false),
        ("semi;colon", false),
    ] {
        assert_eq!(validate_username(u).is_ok(), ok, "username {u:?}");
    }
    for (p, ok) in [
        ("abcdefg1", true),                           // lower + digit
        ("ABCDEFGh", true),                           // upper + lower
        ("12345678!", true),                          // digit + special
        ("Abcdefghijklmnopqrstuvwxyz123456", true),   // 32
        ("Abcdefghijklmnopqrstuvwxyz1234567", false), // 33
        ("Abc1234", false),                           // 7
        ("abcdefgh", false),                          // one class
        ("ABCDEFGHIJ", false),                        // one class
        ("1234567890", false),                        // one class
        ("!@#$%^&*()", false),                        // one class
        ("abc defg1", false),                         // space
        ("pässwörd1", false),                         // not ASCII
        ("", false),
    ] {
        let r = validate_password(p);
        assert_eq!(r.is_ok(), ok, "password {p:?}");
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(p.is_empty() || !e.to_string().contains(p), "{e}");
        }
    }
    let (dir, store) = store_with("rules", 1);
    let g = store.groups().unwrap();
    assert_eq!(
        g.create("n", "bad user", PW).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        g.create("n", "user", "weak").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let id = g.create("orders", "user", PW).unwrap();
    assert_ne!(id, "orders");
    assert_eq!(
        g.create("orders", "other", PW).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(g.list().unwrap().len(), 1);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_credentials_are_rejected_alike_and_passwords_never_reach_the_disk() {
    let (dir, store) = store_with("creds", 1);
    let g = store.groups().unwrap();
    let id = g.create("orders", "app", PW).unwrap();
    let mut msgs = HashSet::new();
    for (gid, user, pw) in [
        (id.as_str(), "app", "Wrong_pass1"),
        (id.as_str(), "other", PW),
        ("ctg-aaaaaaaaaaaaaaaa", "app", PW),
    ] {
        let e = store
            .consumer(gid, user, pw, StartAt::Earliest)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert!(!e.to_string().contains(pw));
        msgs.insert(e.to_string());
    }
    assert_eq!(
        msgs.len(),
        1,
        "the errors say which part was wrong: {msgs:?}"
    );
    // Change the password: the old one stops working, the new one works.
    let new_pw = "Another_pass2";
    assert_eq!(
        g.change_password(&id, "Wrong_pass1", new_pw)
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        g.change_password(&id, PW, "short").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    g.change_password(&id, PW, new_pw).unwrap();
    assert_eq!(
        g.authenticate(&id, "app", PW).unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    let mut c = store
        .consumer(&id, "app", new_pw, StartAt::Earliest)
        .unwrap();
    let r = c.next().unwrap();
    c.commit(&r).unwrap();
    drop(c);
    // The CLI too, with verbose logging: a password on stderr would be a leak.
    let out = Command::new(BIN)
        .args(["-vvv", "group", "passwd", "--store"])
        .arg(&dir)
        .args(["--group", &id, "--user", "app"])
        .env("CHANGETRACK_PASSWORD", new_pw)
        .env("CHANGETRACK_NEW_PASSWORD", "Third_pass3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(new_pw) && !stderr.contains("Third_pass3"));
    drop(store);
    for f in all_files(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        for pw in [PW, new_pw, "Third_pass3"] {
            assert!(
                !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{pw} found in {}",
                f.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn commits_are_durable_monotonic_and_resume_right_after() {
    let (dir, store) = store_with("commits", 3);
    let id = store.groups().unwrap().create("g", "app", PW).unwrap();
    let last = store.last_seq();
    let mut c = store.consumer(&id, "app", PW, StartAt::Committed).unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(c.next().unwrap());
    }
    assert_eq!(got[0].seq, 1);
    c.commit(&got[49]).unwrap();
    // Backwards is refused; equal is a no-op; by seq and by checkpoint work.
    assert_eq!(
        c.commit(CommitAt::Seq(10)).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    c.commit(CommitAt::Seq(50)).unwrap();
    assert_eq!(
        c.commit(CommitAt::Seq(last + 1)).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    // A checkpoint covers every record at or before it.
    let cp = got[59].checkpoint;
    c.commit(CommitAt::Checkpoint(cp)).unwrap();
    let committed = c.committed().unwrap();
    let stored: Vec<ChangeRecord> = store
        .iter(ReadFrom::Earliest)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = stored.iter().rev().find(|r| r.checkpoint <= cp).unwrap();
    assert_eq!(committed.seq, want.seq);
    assert!(committed.seq >= 60);
    drop(c);
    // Reopen everything: the commit survived, and consumption resumes right after it.
    drop(store);
    let store = Store::open(&dir, never_sync()).unwrap();
    let st = store.groups().unwrap().status(&store, &id).unwrap();
    assert_eq!(st.committed.unwrap().seq, committed.seq);
    assert_eq!(st.remaining, last - committed.seq);
    let mut c = store.consumer(&id, "app", PW, StartAt::Committed).unwrap();
    assert_eq!(c.next().unwrap().seq, committed.seq + 1);
    // Explicit reset goes back.
    c.reset(StartAt::Seq(5)).unwrap();
    assert_eq!(c.committed().unwrap().seq, 4);
    assert_eq!(c.next().unwrap().seq, 5);
    // Other start positions.
    c.seek(StartAt::Latest).unwrap();
    assert!(c.poll(Duration::from_millis(10)).unwrap().is_none());
    c.seek(StartAt::Timestamp(stored[300].timestamp)).unwrap();
    let r = c.next().unwrap();
    assert!(r.timestamp >= stored[300].timestamp && r.seq <= stored[300].seq);
    c.seek(StartAt::Checkpoint(stored[200].checkpoint)).unwrap();
    assert_eq!(c.next().unwrap().checkpoint, stored[200].checkpoint);
    drop(c);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 13, case 7: one damaged group file affects only its own group, and a lost commit
/// file of a group that committed before is damage, not a silent restart at seq 1.
#[test]
fn a_damaged_group_affects_only_itself_and_a_lost_commit_is_an_error() {
    let (dir, store) = store_with("damaged-group", 1);
    let groups = store.groups().unwrap();
    let a = groups.create("a", "app", PW).unwrap();
    let b = groups.create("b", "app", PW).unwrap();
    let fresh = groups.create("fresh", "app", PW).unwrap();
    for id in [&a, &b] {
        let mut c = store.consumer(id, "app", PW, StartAt::Committed).unwrap();
        let r = c.next().unwrap();
        c.commit(&r).unwrap();
    }
    // A flipped byte in a's commit file.
    let commit = dir.join("groups").join(&a).join("commit");
    let mut bytes = std::fs::read(&commit).unwrap();
    bytes[6] ^= 0x40;
    std::fs::write(&commit, bytes).unwrap();
    let list = groups.status_all(&store).unwrap();
    assert_eq!(list.len(), 3, "every group is listed");
    let st = |id: &str| list.iter().find(|g| g.info.id == id).unwrap();
    assert!(
        st(&a).damaged.as_deref().unwrap().contains("commit"),
        "{:?}",
        st(&a).damaged
    );
    assert!(st(&b).damaged.is_none() && st(&b).committed.unwrap().seq == 1);
    assert!(st(&fresh).damaged.is_none() && st(&fresh).committed.is_none());
    // Its consumer refuses to start from a position it cannot read.
    let e = store
        .consumer(&a, "app", PW, StartAt::Committed)
        .expect_err("a damaged commit file is an error");
    assert_eq!(e.kind(), ErrorKind::Corruption, "{e}");
    // The CLI lists all three, marks a, and exits 0.
    let o = Command::new(BIN)
        .args([
            "group",
            "list",
            "--store",
            dir.to_str().unwrap(),
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(&a) && l.contains("\"damaged\":\"")),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("group {a} is damaged")));
    // b's commit file deleted: an error, never a restart at seq 1.
    std::fs::remove_file(dir.join("groups").join(&b).join("commit")).unwrap();
    let e = store
        .consumer(&b, "app", PW, StartAt::Committed)
        .expect_err("a lost commit file is an error");
    assert_eq!(e.kind(), ErrorKind::Corruption, "{e}");
    assert!(e.to_string().contains("committed before"), "{e}");
    // A group that never committed starts at seq 1, as before.
    let mut c = store
        .consumer(&fresh, "app", PW, StartAt::Committed)
        .unwrap();
    assert_eq!(c.next().unwrap().seq, 1);
    drop(c);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn delete_is_irreversible() {
    let (dir, store) = store_with("delete", 1);
    let g = store.groups().unwrap();
    let id = g.create("gone", "app", PW).unwrap();
    let mut c = store.consumer(&id, "app", PW, StartAt::Earliest).unwrap();
    let r = c.next().unwrap();
    c.commit(&r).unwrap();
    g.delete(&id).unwrap();
    // The active consumer cannot commit into a deleted group.
    let r = c.next().unwrap();
    assert_eq!(c.commit(&r).unwrap_err().kind(), ErrorKind::NotFound);
    drop(c);
    assert!(g.list().unwrap().is_empty());
    assert_eq!(g.delete(&id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(g.committed(&id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store
            .consumer(&id, "app", PW, StartAt::Earliest)
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
    assert!(!dir.join("groups").join(&id).exists());
    // The same name again is a new group with a new id and no position.
    let id2 = g.create("gone", "app", PW).unwrap();
    assert_ne!(id, id2);
    assert!(g.committed(&id2).unwrap().is_none());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_active_consumer_among_threads_and_the_standby_takes_over() {
    let (dir, store) = store_with("threads", 3);
    let id = store.groups().unwrap().create("g", "app", PW).unwrap();
    let last = store.last_seq();
    let mut a = Consumer2::open(&store, &id);
    // Non-blocking: Busy.
    let e = changetrack::Consumer::open(
        &store,
        &id,
        "app",
        PW,
        &ConsumerOptions {
            wait: false,
            ..quick()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    // A waiting standby in another thread receives nothing while A is active.
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u64>)>();
    let s2 = store.clone();
    let id2 = id.clone();
    let standby = std::thread::spawn(move || {
        let mut b = changetrack::Consumer::open(&s2, &id2, "app", PW, &quick()).unwrap();
        let became = Instant::now();
        let mut seqs = Vec::new();
        while let Some(r) = b.poll(Duration::from_millis(300)).unwrap() {
            seqs.push(r.seq);
        }
        tx.send((became, seqs)).unwrap();
    });
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen.push(a.0.next().unwrap().seq);
    }
    a.0.commit(CommitAt::Seq(150)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "the standby became active early");
    let dropped = Instant::now();
    drop(a);
    let (became, seqs) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    standby.join().unwrap();
    let took = became.saturating_duration_since(dropped);
    assert!(took < Duration::from_secs(1), "takeover took {took:?}");
    // The standby resumes right after the commit: the only duplicates are 151..=200.
    assert_eq!(seqs.first(), Some(&151));
    assert_eq!(seqs, (151..=last).collect::<Vec<_>>());
    assert_eq!(seen, (1..=200).collect::<Vec<_>>());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A consumer with the quick test timeout.
struct Consumer2(changetrack::Consumer);

impl Consumer2 {
    fn open(store: &Store, id: &str) -> Self {
        Self(changetrack::Consumer::open(store, id, "app", PW, &quick()).unwrap())
    }
}

/// Starts `changetrack consume` on a group; its stderr goes to a file named after `name`, which
/// [`stderr_of`] reads back for a failing assertion.
fn consume_cmd(dir: &Path, id: &str, name: &str, extra: &[&str]) -> Proc {
    let err = std::fs::File::create(dir.with_extension(format!("{name}.err"))).unwrap();
    let child = Command::new(BIN)
        .args(["consume", "--store"])
        .arg(dir)
        .args(["--group", id, "--user", "app", "--follow", "--commit"])
        .args(extra)
        .env("CHANGETRACK_PASSWORD", PW)
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap();
    Proc(child)
}

/// What the consumer started by [`consume_cmd`] as `name` wrote on stderr.
fn stderr_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.with_extension(format!("{name}.err"))).unwrap_or_default()
}

/// Reads a child's JSON lines into (arrival time, seq) on a channel.
fn lines(child: &mut Child) -> mpsc::Receiver<(Instant, u64)> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { return };
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if tx
                .send((Instant::now(), v["seq"].as_u64().unwrap()))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

fn recv_until(rx: &mpsc::Receiver<(Instant, u64)>, last: u64, out: &mut Vec<u64>) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (t, s) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("stalled at {:?} waiting for {last}", out.last()));
        out.push(s);
        if s >= last {
            return t;
        }
    }
}

#[test]
fn processes_kill9_and_a_hung_consumer_hand_over_without_loss() {
    let files = full_variant();
    let dir = tmp("procs");
    let store = Store::open(&dir, never_sync()).unwrap();
    let opts = IngestOptions::default();
    ingest(&store, &files[..1], &opts, None, &mut |_| {}).unwrap();
    let n1 = store.last_seq();
    let id = store.groups().unwrap().create("g", "app", PW).unwrap();
    let groups = store.groups().unwrap();

    // P1 active, P2 standby (both the CLI, in other processes).
    let mut p1 = consume_cmd(&dir, &id, "p1", &["--session-timeout", "2"]);
    let rx1 = lines(&mut p1);
    let mut got1 = Vec::new();
    recv_until(&rx1, n1, &mut got1);
    // Wait for P1's commit (every second) before starting the standby.
    let t0 = Instant::now();
    while groups.committed(&id).unwrap().map(|c| c.seq) != Some(n1) {
        assert!(t0.elapsed() < Duration::from_secs(10), "P1 never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut p2 = consume_cmd(&dir, &id, "p2", &["--session-timeout", "2"]);
    let rx2 = lines(&mut p2);
    // More records: only P1 receives them (across processes, woken through the tail file).
    ingest(&store, &files[..2], &opts, None, &mut |_| {}).unwrap();
    let n2 = store.last_seq();
    recv_until(&rx1, n2, &mut got1);
    assert!(rx2.try_recv().is_err(), "the standby received records");
    // kill -9 P1 right away (probably before it committed the new records).
    let committed_at_kill = groups.committed(&id).unwrap().map_or(0, |c| c.seq);
    let killed = Instant::now();
    p1.kill().unwrap();
    p1.wait().unwrap();
    let committed = groups.committed(&id).unwrap().map_or(0, |c| c.seq);
    assert!(committed >= committed_at_kill);
    let mut got2 = Vec::new();
    let first_at = if committed < n2 {
        let (t, s) = rx2.recv_timeout(Duration::from_secs(20)).unwrap();
        got2.push(s);
        recv_until(&rx2, n2, &mut got2);
        t
    } else {
        Instant::now()
    };
    let takeover = first_at.saturating_duration_since(killed);
    eprintln!("takeover after kill -9: {takeover:?} (committed {committed} of {n2})");
    assert!(
        takeover < Duration::from_secs(2),
        "takeover took {takeover:?}"
    );
    // Nothing lost; duplicates only after the last commit.
    assert_eq!(got1, (1..=n2).collect::<Vec<_>>());
    assert_eq!(got2, (committed + 1..=n2).collect::<Vec<_>>());

    // A hung active consumer (SIGSTOP) is replaced after its session timeout, and cannot
    // commit when it wakes up (fenced).
    let t0 = Instant::now();
    while groups.committed(&id).unwrap().map(|c| c.seq) != Some(n2) {
        assert!(t0.elapsed() < Duration::from_secs(10), "P2 never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut p3 = consume_cmd(&dir, &id, "p3", &["--session-timeout", "2"]);
    let rx3 = lines(&mut p3);
    std::thread::sleep(Duration::from_millis(200));
    let pid2 = p2.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid2])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    ingest(&store, &files, &opts, None, &mut |_| {}).unwrap();
    let n3 = store.last_seq();
    let mut got3 = Vec::new();
    let first3 = {
        let (t, s) = rx3.recv_timeout(Duration::from_secs(20)).unwrap();
        got3.push(s);
        t
    };
    recv_until(&rx3, n3, &mut got3);
    let waited = first3.saturating_duration_since(stopped);
    eprintln!("takeover from a hung consumer: {waited:?}");
    assert!(waited >= Duration::from_millis(1400) && waited < Duration::from_secs(6));
    assert_eq!(got3, (n2 + 1..=n3).collect::<Vec<_>>());
    // Let P3 commit, then wake P2: it finds it lost the group and exits with code 7 (Busy)
    // without moving the committed position.
    let t0 = Instant::now();
    while groups.committed(&id).unwrap().map(|c| c.seq) != Some(n3) {
        assert!(t0.elapsed() < Duration::from_secs(10), "P3 never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill")
        .args(["-CONT", &pid2])
        .status()
        .unwrap()
        .success());
    let st = p2.wait().unwrap();
    assert_eq!(
        st.code(),
        Some(7),
        "the fenced consumer ended with {st:?}; its stderr:\n{}",
        stderr_of(&dir, "p2")
    );
    assert_eq!(groups.committed(&id).unwrap().unwrap().seq, n3);
    drop(p3);
    drop(store);
    for n in ["p1", "p2", "p3"] {
        let _ = std::fs::remove_file(dir.with_extension(format!("{n}.err")));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn thirty_two_groups_consume_concurrently_while_ingestion_runs() {
    let dir = tmp("many");
    let store = Store::open(&dir, never_sync()).unwrap();
    let files = full_variant();
    let want = decode(&files);
    let n = want.len() as u64;
    let groups = store.groups().unwrap();
    let ids: Vec<String> = (0..32)
        .map(|i| groups.create(&format!("g{i}"), "app", PW).unwrap())
        .collect();
    std::thread::scope(|s| {
        let consumers: Vec<_> = ids
            .iter()
            .map(|id| {
                let store = &store;
                s.spawn(move || {
                    let mut c = store.consumer(id, "app", PW, StartAt::Earliest).unwrap();
                    let mut got = Vec::new();
                    while (got.len() as u64) < n {
                        let r = c.poll(Duration::from_secs(30)).unwrap().expect("stalled");
                        got.push(r);
                        if got.len() % 97 == 0 {
                            c.commit(got.last().unwrap()).unwrap();
                        }
                    }
                    c.commit(got.last().unwrap()).unwrap();
                    got
                })
            })
            .collect();
        // Ingest slowly (one transaction per commit) so that consumers and ingestion overlap.
        ingest(
            &store,
            &files,
            &IngestOptions {
                batch_records: 1,
                ..IngestOptions::default()
            },
            None,
            &mut |_| {},
        )
        .unwrap();
        for c in consumers {
            let got = c.join().unwrap();
            assert_eq!(
                got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                (1..=n).collect::<Vec<_>>()
            );
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.checkpoint, g.op), (w.checkpoint, w.op));
            }
        }
    });
    for st in groups.status_all(&store).unwrap() {
        assert_eq!(st.committed.unwrap().seq, n);
        assert_eq!(st.remaining, 0);
    }
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The object-change request log lost (removed, or emptied) is never silent: request ids do not
/// start again at 1 (an id the store applied once would be taken for applied and skipped), and
/// requests lost before ingestion applied them stop ingestion, naming them, until they are
/// re-issued (or the counter is removed to go on without them).
#[test]
fn a_lost_request_log_neither_reuses_ids_nor_loses_requests_silently() {
    let files = full_variant();
    let dir = tmp("objects-lost");
    let store = Store::open(&dir, never_sync()).unwrap();
    let opts = IngestOptions {
        heartbeat_interval: None,
        ..IngestOptions::default()
    };
    let run = || ingest(&store, &files[..1], &opts, None, &mut |_| {});
    let remove = |t: &str| ObjectChange {
        action: ObjectAction::Remove,
        databases: vec![],
        tables: vec![("corpus".to_owned(), t.to_owned())],
        dml: false,
        ddl: false,
    };
    let applied = || {
        store
            .filter_history()
            .unwrap()
            .iter()
            .flat_map(|h| h.requests.clone())
            .collect::<Vec<u64>>()
    };
    run().unwrap();
    assert_eq!(request_object_change(&dir, &remove("t_cpk")).unwrap(), 1);
    run().unwrap();
    assert_eq!(applied(), vec![1]);
    // The log removed after it was applied: the next request is 2, and it is applied.
    std::fs::remove_file(dir.join("objects.requests")).unwrap();
    assert_eq!(request_object_change(&dir, &remove("t_int")).unwrap(), 2);
    run().unwrap();
    assert_eq!(applied(), vec![1, 2]);
    // A request lost before ingestion applied it: ingestion fails, names it, stores nothing.
    assert_eq!(request_object_change(&dir, &remove("t_str")).unwrap(), 3);
    std::fs::write(dir.join("objects.requests"), b"").unwrap();
    let last = store.last_seq();
    let e = run().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corruption);
    assert!(
        e.to_string().contains("request 3 was made") && e.to_string().contains("re-issue"),
        "{e}"
    );
    assert_eq!(store.last_seq(), last);
    assert_eq!(applied(), vec![1, 2]);
    // Re-issued: it gets a new id, and ingestion goes on with it.
    assert_eq!(request_object_change(&dir, &remove("t_str")).unwrap(), 4);
    run().unwrap();
    assert_eq!(applied(), vec![1, 2, 4]);
    // Lost again, and this time given up: removing the counter lets ingestion go on, and the
    // next id still follows the applied ones.
    assert_eq!(request_object_change(&dir, &remove("t_cpk")).unwrap(), 5);
    std::fs::remove_file(dir.join("objects.requests")).unwrap();
    assert!(run().is_err());
    std::fs::remove_file(dir.join("objects.requested")).unwrap();
    run().unwrap();
    assert_eq!(applied(), vec![1, 2, 4]);
    assert_eq!(request_object_change(&dir, &remove("t_cpk")).unwrap(), 5);
    run().unwrap();
    assert_eq!(applied(), vec![1, 2, 4, 5]);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn objects_added_and_removed_mid_stream_take_effect_at_their_checkpoint() {
    let files = full_variant();
    let src = tmp("objects-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(&files[0], src.join("mariadb-bin.000001")).unwrap();
    let dir = tmp("objects-store");
    let store = Store::open(&dir, never_sync()).unwrap();
    let table = |t: &str| ("corpus".to_owned(), t.to_owned());
    let change = |action, t: &str| ObjectChange {
        action,
        databases: vec![],
        tables: vec![table(t)],
        dml: false,
        ddl: false,
    };
    // Before ingestion starts: t_cpk is not tracked.
    request_object_change(&dir, &change(ObjectAction::Remove, "t_cpk")).unwrap();
    let stop: changetrack::ingest::StopFlag =
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let n1 = decode(&files[..1]).len() as u64;
    let change_seq = std::thread::scope(|s| {
        let _stop_on_panic = StopOnDrop(std::sync::Arc::clone(&stop));
        let t = s.spawn(|| {
            ingest(
                &store,
                std::slice::from_ref(&src),
                &IngestOptions {
                    follow: true,
                    heartbeat_interval: None,
                    ..IngestOptions::default()
                },
                Some(&stop),
                &mut |_| {},
            )
            .unwrap()
        });
        let wait = |what: &str, f: &dyn Fn() -> bool| {
            let t0 = Instant::now();
            while !f() {
                assert!(t0.elapsed() < Duration::from_secs(20), "stalled: {what}");
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        wait("file 1", &|| store.last_seq() >= n1);
        // While ingestion runs: track t_cpk, stop tracking t_int.
        let mut both = change(ObjectAction::Add, "t_cpk");
        both.action = ObjectAction::Add;
        request_object_change(&dir, &both).unwrap();
        request_object_change(&dir, &change(ObjectAction::Remove, "t_int")).unwrap();
        wait("the change", &|| {
            store
                .filter_history()
                .unwrap()
                .last()
                .is_some_and(|h| h.requests.contains(&3))
        });
        std::fs::copy(&files[1], src.join("mariadb-bin.000002")).unwrap();
        std::fs::copy(&files[2], src.join("mariadb-bin.000003")).unwrap();
        let end = decode(&files).last().unwrap().checkpoint;
        wait("files 2 and 3", &|| {
            store
                .source_position()
                .unwrap()
                .is_some_and(|p| p.file_index == 3 && p.offset >= end.offset)
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        t.join().unwrap();
        let h = store.filter_history().unwrap();
        // The initial filter, the pre-start removal, the mid-stream change. The two requests of
        // the change were written one after the other: the ingester may have seen them in one
        // look or in two, while idle at the end of file 1 either way.
        assert!(h.len() == 3 || h.len() == 4, "{h:?}");
        assert_eq!(h[1].requests, vec![1]);
        let change: Vec<u64> = h[2..].iter().flat_map(|e| e.requests.clone()).collect();
        assert_eq!(change, vec![2, 3], "{h:?}");
        assert!(h[2..]
            .iter()
            .all(|e| e.checkpoint == h[2].checkpoint && e.seq == h[2].seq));
        assert_eq!(h[2].checkpoint.file_index, 1);
        h[2].seq
    });
    let stored: Vec<ChangeRecord> = store
        .iter(ReadFrom::Earliest)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let of = |t: &str| -> Vec<&ChangeRecord> {
        stored
            .iter()
            .filter(|r| r.op.is_dml() && r.table_name() == Some(t))
            .collect()
    };
    let all = decode(&files);
    let count = |t: &str, from: usize, to: usize| {
        all.iter()
            .filter(|r| {
                r.op.is_dml()
                    && r.table_name() == Some(t)
                    && (from..=to).contains(&(r.checkpoint.file_index as usize))
            })
            .count()
    };
    // t_cpk: nothing before the change, every change after it (files 2 and 3).
    let cpk = of("t_cpk");
    assert!(cpk.iter().all(|r| r.seq >= change_seq));
    assert_eq!(cpk.len(), count("t_cpk", 2, 3));
    // t_int: everything before the change (file 1), nothing after (its file 3 changes).
    let int = of("t_int");
    assert!(int.iter().all(|r| r.seq < change_seq));
    assert_eq!(int.len(), count("t_int", 1, 1));
    assert!(count("t_int", 3, 3) > 0);
    // Other tables are untouched.
    assert_eq!(of("t_str").len(), count("t_str", 1, 3));
    drop(store);
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heartbeats_keep_an_idle_consumer_moving() {
    let (dir, store) = store_with("heartbeat", 1);
    let id = store.groups().unwrap().create("g", "app", PW).unwrap();
    let mut c = store.consumer(&id, "app", PW, StartAt::Latest).unwrap();
    let stop: changetrack::ingest::StopFlag =
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pos = store.source_position().unwrap().unwrap();
    std::thread::scope(|s| {
        let _stop_on_panic = StopOnDrop(std::sync::Arc::clone(&stop));
        let t = s.spawn(|| {
            ingest(
                &store,
                &full_variant()[..1],
                &IngestOptions {
                    follow: true,
                    heartbeat_interval: Some(Duration::from_millis(100)),
                    ..IngestOptions::default()
                },
                Some(&stop),
                &mut |_| {},
            )
            .unwrap()
        });
        let mut beats = Vec::new();
        while beats.len() < 3 {
            let r = c
                .poll(Duration::from_secs(10))
                .unwrap()
                .expect("no heartbeat");
            assert_eq!(r.op, Op::Heartbeat);
            assert_eq!(
                r.checkpoint.to_string(),
                format!("{}@{}", pos.offset, pos.file_index)
            );
            c.commit(&r).unwrap();
            beats.push(r);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        t.join().unwrap();
        assert!(beats
            .windows(2)
            .all(|w| w[1].seq > w[0].seq && w[1].timestamp >= w[0].timestamp));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now - u64::from(beats[2].timestamp) < 5);
        let st = store.groups().unwrap().status(&store, &id).unwrap();
        assert_eq!(st.committed.unwrap().seq, beats[2].seq);
    });
    drop(c);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_consumer_far_behind_reads_ahead_and_still_gets_every_record_once() {
    // About 25k records: a consumer from the start reads them through a read-ahead scan, while
    // more are appended; it commits, seeks back and forth mid-scan, and resumes after a drop.
    let dir = tmp("far-behind");
    let store = Store::open(&dir, never_sync()).unwrap();
    let base: Vec<ChangeRecord> = decode(&full_variant());
    for _ in 0..30 {
        store.append(&base, None).unwrap();
    }
    let id = store.groups().unwrap().create("g", "app", PW).unwrap();
    let total = store.last_seq();
    let mut c = store.consumer(&id, "app", PW, StartAt::Earliest).unwrap();
    let mut seqs = Vec::new();
    let next = |c: &mut changetrack::Consumer| {
        c.poll(Duration::from_secs(5))
            .unwrap()
            .expect("stalled")
            .seq
    };
    while seqs.len() < 5_000 {
        seqs.push(next(&mut c));
    }
    assert_eq!(threads_named("changetrack-rea"), 1);
    // Back to 5000 (again) and on: the scan restarts from the new position.
    c.seek(StartAt::Seq(5_000)).unwrap();
    assert_eq!(next(&mut c), 5_000);
    while seqs.len() < 10_000 {
        seqs.push(next(&mut c));
    }
    c.commit(CommitAt::Seq(10_000)).unwrap();
    // Appended during the scan: the scan ends where the store ended when it started, and the
    // consumer goes on with the new records.
    store.append(&base, None).unwrap();
    let total2 = store.last_seq();
    assert!(total2 > total);
    while (seqs.len() as u64) < total2 {
        seqs.push(next(&mut c));
    }
    assert!(c.poll(Duration::from_millis(50)).unwrap().is_none());
    assert_eq!(seqs, (1..=total2).collect::<Vec<u64>>());
    c.commit(CommitAt::Seq(20_000)).unwrap();
    drop(c);
    // A new consumer resumes after the commit, through another scan.
    let mut c = store.consumer(&id, "app", PW, StartAt::Committed).unwrap();
    let again: Vec<u64> = (20_001..=total2).map(|_| next(&mut c)).collect();
    assert_eq!(again, (20_001..=total2).collect::<Vec<u64>>());
    drop(c);
    // And the records are the stored ones.
    let mut c2 = store
        .consumer(&id, "app", PW, StartAt::Seq(total - 6_000))
        .unwrap();
    for want in store.iter(ReadFrom::Seq(total - 6_000)).unwrap() {
        assert_eq!(
            c2.poll(Duration::from_secs(5)).unwrap().unwrap(),
            want.unwrap()
        );
    }
    drop(c2);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
