//! The store-damage sweep (issue 13): a store with records, groups and object requests is
//! damaged one file at a time, in three ways (delete, truncate to half, flip a byte in the
//! middle), for every kind of file it holds: table files (SST), MANIFEST, CURRENT, OPTIONS,
//! the write-ahead log, the writer's tail file, and each group's files. After each damage every
//! reader command runs, then `ingest` of the same binlogs (a resume), then `check --deep`.
//!
//! Each reader either prints exactly what it printed on the intact store (exit 0), or exits
//! non-zero with an error that names the store or the damaged file: never partial data with
//! exit 0. A failed reader or ingest changes no file (nothing deleted, nothing shortened). An
//! ingest that succeeds leaves the store holding exactly the intact store's records. When any
//! reader fails, `check --deep` fails too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const PASSWORD: &str = "damage-sweep-pw";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binlogs() -> Vec<PathBuf> {
    let d = root().join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    [
        "mariadb-bin.000001",
        "mariadb-bin.000002",
        "mariadb-bin.000003",
    ]
    .iter()
    .map(|f| d.join(f))
    .collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CHANGETRACK_PASSWORD", PASSWORD)
        .env("CHANGETRACK_LOG", "error")
        .output()
        .expect("run changetrack")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "changetrack {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (s, d) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
        }
    }
}

/// Every file under `dir` (relative path -> size).
fn files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, u64>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(m) = e.metadata() {
                out.insert(p.strip_prefix(base).unwrap().to_path_buf(), m.len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The commands that read a store, by name (`{S}` stands for the store directory).
const READERS: &[(&str, &[&str])] = &[
    ("dump", &["dump", "--store", "{S}"]),
    (
        "dump-from",
        &["dump", "--store", "{S}", "--from-seq", "700"],
    ),
    ("range", &["range", "--store", "{S}"]),
    ("stats", &["stats", "--store", "{S}"]),
    (
        "query",
        &[
            "query", "--store", "{S}", "--format", "jsonl", "--limit", "100000",
        ],
    ),
    (
        "consume",
        &[
            "consume",
            "--store",
            "{S}",
            "--group",
            "{G}",
            "--user",
            "reader",
            "--until-end",
            "--format",
            "jsonl",
        ],
    ),
    (
        "groups",
        &["group", "list", "--store", "{S}", "--format", "jsonl"],
    ),
    ("objects", &["objects", "--store", "{S}", "list"]),
];

fn reader_args<'a>(args: &[&'a str], store: &'a str, group: &'a str) -> Vec<&'a str> {
    args.iter()
        .map(|a| match *a {
            "{S}" => store,
            "{G}" => group,
            a => a,
        })
        .collect()
}

/// What a reader printed, without what legitimately differs between copies of one store.
fn normalise(name: &str, out: &str, store: &str) -> String {
    let out = out.replace(store, "STORE");
    match name {
        // The size on disk changes with the files.
        "stats" => out
            .lines()
            .filter(|l| !l.starts_with("disk bytes:"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => out,
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Delete,
    Truncate,
    Flip,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Delete => std::fs::remove_file(path).unwrap(),
        Damage::Truncate => {
            let n = std::fs::metadata(path).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(n / 2).unwrap();
        }
        Damage::Flip => {
            let mut b = std::fs::read(path).unwrap();
            if b.is_empty() {
                b.push(0xff);
            } else {
                let i = b.len() / 2;
                b[i] ^= 0x5a;
            }
            std::fs::write(path, b).unwrap();
        }
    }
}

/// Which files of the store are swept (RocksDB's info logs and the lock files hold no data).
/// The object-change request log and its counter are swept too: a pending request lost with
/// the log is told from none by the counter.
fn swept(rel: &Path) -> bool {
    let n = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    !(n == "LOG" || n.starts_with("LOG.old") || n.ends_with(".lock") || n == "LOCK")
}

/// The files a reader must not change: all but the consumers' leases and lock files, which a
/// consumer writes by design, and the ledger of verified table files, a cache that any open
/// rewrites after it has read the files it did not hold.
fn data_files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    files(dir)
        .into_iter()
        .filter(|(p, _)| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n != "lease"
                && !n.ends_with(".lock")
                && n != "LOCK"
                && !n.starts_with("changetrack.verified")
        })
        .collect()
}

#[test]
fn every_damaged_file_is_an_error_or_the_exact_data() {
    let tmp = TempDir(std::env::temp_dir().join(format!("ct-damage-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).unwrap();
    let pristine = tmp.0.join("pristine");
    let ps = pristine.to_str().unwrap().to_owned();
    let logs = binlogs();
    let log_args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    // Two ingests, so the store has table files, a manifest with several versions and a
    // write-ahead log; two groups, one of which has committed; an object request.
    let mut a = vec!["ingest", "--store", &ps, log_args[0]];
    ok(&a);
    a = vec!["ingest", "--store", &ps];
    a.extend(&log_args);
    ok(&a);
    let g1 = ok(&[
        "group",
        "create",
        "--store",
        &ps,
        "--name",
        "committed",
        "--user",
        "reader",
    ]);
    let g1 = g1.lines().last().unwrap().trim().to_owned();
    let g2 = ok(&[
        "group", "create", "--store", &ps, "--name", "fresh", "--user", "reader",
    ]);
    let g2 = g2.lines().last().unwrap().trim().to_owned();
    ok(&[
        "consume",
        "--store",
        &ps,
        "--group",
        &g1,
        "--user",
        "reader",
        "--until-end",
        "--commit",
        "--format",
        "jsonl",
    ]);
    ok(&[
        "objects",
        "--store",
        &ps,
        "add",
        "--tables",
        "corpus.never_seen",
    ]);
    let want: Vec<(String, String)> = READERS
        .iter()
        .map(|(name, args)| {
            let out = ok(&reader_args(args, &ps, &g2));
            assert!(
                !out.is_empty(),
                "{name} printed nothing on the intact store"
            );
            (name.to_string(), normalise(name, &out, &ps))
        })
        .collect();
    // The committed group has nothing left to read.
    let g1_consume = ok(&reader_args(READERS[5].1, &ps, &g1));
    assert_eq!(READERS[5].0, "consume");
    let dump_want = want[0].1.clone();
    assert!(
        dump_want.lines().count() > 500,
        "the sweep needs a real store"
    );
    let ok_check = run(&["check", "--store", &ps, "--deep"]);
    assert!(
        ok_check.status.success(),
        "check --deep on the intact store: {}",
        String::from_utf8_lossy(&ok_check.stdout)
    );

    let targets: Vec<PathBuf> = files(&pristine).into_keys().filter(|p| swept(p)).collect();
    let kinds = |p: &Path| -> &'static str {
        let n = p.to_str().unwrap();
        if n.ends_with(".sst") {
            "sst"
        } else if n.contains("MANIFEST") {
            "manifest"
        } else if n == "CURRENT" {
            "current"
        } else if n.contains("OPTIONS") {
            "options"
        } else if n.ends_with(".log") {
            "wal"
        } else if n.starts_with("groups") {
            "group"
        } else {
            "other"
        }
    };
    for k in ["sst", "manifest", "current", "options", "group"] {
        assert!(
            targets.iter().any(|p| kinds(p) == k),
            "the store has no {k} file to damage: {targets:?}"
        );
    }
    let mut failures = Vec::new();
    let mut detected = 0;
    let mut runs = 0;
    for (n, rel) in targets.iter().enumerate() {
        for how in [Damage::Delete, Damage::Truncate, Damage::Flip] {
            let case = format!("{how:?} {}", rel.display());
            let store = tmp.0.join(format!("case-{n}-{how:?}"));
            copy_dir(&pristine, &store);
            let s = store.to_str().unwrap().to_owned();
            damage(&store.join(rel), how);
            let before = data_files(&store);
            let mut any_failed = false;
            for ((name, args), (_, expect)) in READERS.iter().zip(&want) {
                // The damaged group is the one read, when a group file is damaged.
                let group = if rel.starts_with(format!("groups/{g1}")) {
                    &g1
                } else {
                    &g2
                };
                let expect = if *name == "consume" && group == &g1 {
                    &g1_consume
                } else {
                    expect
                };
                let o = run(&reader_args(args, &s, group));
                runs += 1;
                let out = String::from_utf8_lossy(&o.stdout);
                let err = String::from_utf8_lossy(&o.stderr);
                if o.status.success() {
                    let got = normalise(name, &out, &s);
                    // A damaged group file: `group list` marks that group, the others are
                    // listed as before.
                    if *name == "groups" && got != *expect {
                        let damaged_marked = out.lines().any(|l| l.contains("\"damaged\":\""));
                        if !damaged_marked {
                            failures.push(format!("{case}: group list differs without marking a group damaged:\n{out}"));
                        } else {
                            any_failed = true;
                        }
                        continue;
                    }
                    // A group file that consume of the other group never reads.
                    if got != *expect {
                        failures.push(format!(
                            "{case}: {name} exited 0 with different output ({} lines, {} expected)",
                            got.lines().count(),
                            expect.lines().count()
                        ));
                    }
                } else {
                    any_failed = true;
                    let names_it = err.contains(&s)
                        || err.contains(rel.file_name().unwrap().to_str().unwrap())
                        || (rel.starts_with("groups") && err.contains(group.as_str()));
                    if !names_it || !err.contains("error") {
                        failures.push(format!(
                            "{case}: {name} failed without naming the store or the file: {err}"
                        ));
                    }
                }
            }
            if data_files(&store) != before {
                failures.push(format!("{case}: a reader changed the store's files"));
            }
            let mut a = vec!["ingest", "--store", &s];
            a.extend(&log_args);
            let o = run(&a);
            runs += 1;
            if o.status.success() {
                let d = run(&["dump", "--store", &s]);
                let got = normalise("dump", &String::from_utf8_lossy(&d.stdout), &s);
                if !d.status.success() || got != dump_want {
                    failures.push(format!(
                        "{case}: ingest exited 0 but the store then does not hold the records ({}): {}",
                        if d.status.success() { "different dump" } else { "dump fails" },
                        String::from_utf8_lossy(&d.stderr)
                    ));
                }
            } else {
                any_failed = true;
                let after = data_files(&store);
                for (f, size) in &before {
                    match after.get(f) {
                        None => failures
                            .push(format!("{case}: the failed ingest deleted {}", f.display())),
                        Some(s2) if s2 < size => failures.push(format!(
                            "{case}: the failed ingest shortened {}",
                            f.display()
                        )),
                        _ => {}
                    }
                }
            }
            if any_failed {
                detected += 1;
                // What fails a reader (or ingest), the deep check finds.
                let c = run(&["check", "--store", &s, "--deep"]);
                runs += 1;
                if c.status.success() {
                    failures.push(format!(
                        "{case}: readers failed but check --deep passed:\n{}",
                        String::from_utf8_lossy(&c.stdout)
                    ));
                }
            }
            let _ = std::fs::remove_dir_all(&store);
        }
    }
    eprintln!(
        "damage sweep: {} files x 3 damages, {runs} command runs, {detected} cases detected",
        targets.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(detected > 0);
}

/// `check --deep` tells what can be saved, `ingest --salvage` keeps it (the same seqs) and then
/// stores again what was lost, so the store ends up exactly as it was; the damaged store is
/// moved aside, not deleted.
#[test]
fn salvage_keeps_the_intact_prefix_and_ingest_restores_the_rest() {
    let tmp = TempDir(std::env::temp_dir().join(format!("ct-salvage-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).unwrap();
    let store = tmp.0.join("store");
    let s = store.to_str().unwrap().to_owned();
    let logs = binlogs();
    let log_args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    // The first ingest's records reach table files when the second ingest opens the store.
    ok(&["ingest", "--store", &s, log_args[0], log_args[1]]);
    let mut a = vec!["ingest", "--store", &s];
    a.extend(&log_args);
    ok(&a);
    let g = ok(&[
        "group", "create", "--store", &s, "--name", "g", "--user", "reader",
    ]);
    let g = g.lines().last().unwrap().trim().to_owned();
    let dump = ok(&["dump", "--store", &s]);
    let total = dump.lines().count();
    // The largest table file holds the records: damage a block at 70% of it.
    let (sst, size) = files(&store)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "sst"))
        .max_by_key(|(_, n)| *n)
        .expect("the store has table files");
    let path = store.join(&sst);
    let mut b = std::fs::read(&path).unwrap();
    let at = (size as usize) * 7 / 10;
    for x in &mut b[at..at + 16] {
        *x ^= 0xff;
    }
    std::fs::write(&path, b).unwrap();
    // Readers fail, naming the file.
    let o = run(&["dump", "--store", &s]);
    assert!(!o.status.success(), "dump of a damaged store exited 0");
    let c = run(&["check", "--store", &s, "--deep"]);
    let out = String::from_utf8_lossy(&c.stdout);
    assert_eq!(c.status.code(), Some(1), "{out}");
    assert!(out.contains("problems"), "{out}");
    assert!(out.contains("can be saved: seq 1 to "), "{out}");
    // A writer refuses it without --salvage, and changes nothing.
    let before = files(&store);
    let o = run(&a);
    assert!(!o.status.success(), "ingest into a damaged store exited 0");
    assert_eq!(files(&store), before, "the refused ingest changed files");
    let mut sa = vec!["ingest", "--salvage", "--store", &s];
    sa.extend(&log_args);
    let o = run(&sa);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ingest --salvage: {err}");
    assert!(err.contains("salvage: kept seq 1 to "), "{err}");
    assert!(err.contains("was moved to"), "{err}");
    let kept: usize = err
        .split("salvage: kept seq 1 to ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(kept > 0 && kept < total, "kept {kept} of {total}");
    // The store holds exactly what it held, with the same seqs (the dump prints them).
    assert_eq!(ok(&["dump", "--store", &s]), dump);
    assert!(run(&["check", "--store", &s, "--deep"]).status.success());
    // The group survived the salvage.
    let list = ok(&["group", "list", "--store", &s, "--format", "jsonl"]);
    assert!(list.contains(&g), "{list}");
    // The damaged copy is kept.
    let moved: Vec<_> = std::fs::read_dir(&tmp.0)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.damaged-")
        })
        .collect();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].path().join(&sst).exists());
}

/// Issue 13, case 3: a byte flipped inside a table file of a store that a writer closed
/// cleanly (so its ledger of verified files holds every table file): `stats` and `range`,
/// which read only the counters and the ends of the store, and `ingest`, which only appends,
/// fail with an error naming the file, as `dump` does; nothing is deleted. Before the ledger,
/// `stats` and `range` exited 0 here.
#[test]
fn a_flipped_table_file_fails_stats_range_and_ingest() {
    let tmp = TempDir(std::env::temp_dir().join(format!("ct-flip-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    let store = tmp.0.join("store");
    let s = store.to_str().unwrap().to_owned();
    let logs = binlogs();
    let log_args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    // Two ingests: the second open writes the first one's log into a table file.
    ok(&["ingest", "--store", &s, log_args[0]]);
    let mut a = vec!["ingest", "--store", &s];
    a.extend(&log_args);
    ok(&a);
    let ledger_path = store.join("changetrack.verified");
    let ledger = std::fs::read_to_string(&ledger_path).unwrap();
    let ledger_inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&ledger_path).unwrap().ino()
    };
    let inode_before = ledger_inode();
    let mut ssts: Vec<(PathBuf, u64)> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .map(|p| {
            let n = std::fs::metadata(&p).unwrap().len();
            (p, n)
        })
        .collect();
    assert!(!ssts.is_empty());
    for (p, _) in &ssts {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(ledger.contains(name), "the ledger misses {name}: {ledger}");
    }
    let stats_before = ok(&["stats", "--store", &s]);
    let range_before = ok(&["range", "--store", &s]);
    // The ledger was not rewritten by those reads (a save renames a new file over it):
    // nothing needed reading.
    assert_eq!(
        ledger_inode(),
        inode_before,
        "stats or range read the table files again"
    );
    ssts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let (big, _) = &ssts[0];
    let name = big.file_name().unwrap().to_str().unwrap().to_owned();
    // In place, as a stray write would: one byte a third of the way in (a data block).
    let flip = || {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(big)
            .unwrap();
        let at = std::fs::metadata(big).unwrap().len() / 3;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x5a;
        f.write_all_at(&b, at).unwrap();
    };
    flip();
    let before = data_files(&store);
    for args in [
        vec!["stats", "--store", &s],
        vec!["range", "--store", &s],
        vec!["dump", "--store", &s],
        a.clone(),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{args:?} exited 0 on a damaged table file: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            err.contains(&name) && err.contains("error"),
            "{args:?} does not name {name}: {err}"
        );
        assert_eq!(
            data_files(&store),
            before,
            "{args:?} changed the store's files"
        );
    }
    let c = run(&["check", "--store", &s, "--deep"]);
    assert!(!c.status.success());
    let err = String::from_utf8_lossy(&c.stdout) + String::from_utf8_lossy(&c.stderr);
    assert!(
        err.contains(&name),
        "check --deep does not name {name}: {err}"
    );
    // Undone, everything reads as before.
    flip();
    assert_eq!(ok(&["stats", "--store", &s]), stats_before);
    assert_eq!(ok(&["range", "--store", &s]), range_before);
}
