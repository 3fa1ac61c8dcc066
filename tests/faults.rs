//! Faults of the file system under a store (issue 13), on a real small tmpfs mounted by the
//! test (needs root; with `CHANGETRACK_REQUIRE_SERVERS` set a missing privilege fails the
//! test, else it is reported as SKIPPED):
//! - a full disk during `ingest`: a non-zero exit naming the error, a summary of what was
//!   stored and acknowledged, and after space is freed the same command resumes and the store
//!   holds exactly what an undisturbed ingest stores;
//! - a full disk during a consumer's commit: the commit fails with an error, the previous
//!   committed position stays, and once space is back the group resumes from it, losing
//!   nothing;
//! - a store on a read-only file system: readers return the exact data; `ingest` and commits
//!   fail with an error naming the read-only file system; nothing changes.
//!
//! `EIO` in the read path is tests/failpoints.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const PASSWORD: &str = "faults-pw-1";

fn binlogs() -> Vec<String> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    [
        "mariadb-bin.000001",
        "mariadb-bin.000002",
        "mariadb-bin.000003",
    ]
    .iter()
    .map(|f| d.join(f).to_str().unwrap().to_owned())
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

/// A tmpfs of `size` bytes, unmounted (and removed) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(name: &str, size: u64) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("ct-faults-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .ok()?;
        if !o.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self(dir))
    }

    fn remount(&self, opts: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "remount {opts}: {o:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount_or_skip(name: &str, size: u64) -> Option<Tmpfs> {
    let m = Tmpfs::mount(name, size);
    if m.is_none() {
        assert!(
            std::env::var_os("CHANGETRACK_REQUIRE_SERVERS").is_none(),
            "cannot mount a tmpfs (the fault tests need root)"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs (the fault tests need root)");
    }
    m
}

/// Fills the file system of `dir` until only about `leave` bytes are free.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let free = free_bytes(dir);
    let n = free.saturating_sub(leave);
    let f = std::fs::File::create(&filler).unwrap();
    // Written, not sparse: tmpfs counts pages actually used.
    let chunk = vec![0xa5u8; 64 << 10];
    let mut w = std::io::BufWriter::new(f);
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        if std::io::Write::write_all(&mut w, &chunk[..k]).is_err() {
            break;
        }
        left -= k as u64;
    }
    let _ = std::io::Write::flush(&mut w);
    filler
}

fn free_bytes(dir: &Path) -> u64 {
    let o = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// The dump of a store that was ingested without any fault.
fn reference_dump(dir: &Path) -> String {
    let store = dir.join("reference");
    let s = store.to_str().unwrap();
    let mut a = vec!["ingest", "--store", s];
    let logs = binlogs();
    a.extend(logs.iter().map(String::as_str));
    ok(&a);
    let d = ok(&["dump", "--store", s]);
    std::fs::remove_dir_all(&store).unwrap();
    d
}

#[test]
fn a_full_disk_during_ingest_and_commit_loses_nothing() {
    let reference =
        reference_dump(&std::env::temp_dir().join(format!("ct-faults-ref-{}", std::process::id())));
    let Some(fs) = mount_or_skip("full", 64 << 20) else {
        return;
    };
    let store = fs.0.join("store");
    let s = store.to_str().unwrap();
    let logs = binlogs();
    ok(&["ingest", "--store", s, &logs[0]]);
    let stored_before: u64 = ok(&["stats", "--store", s])
        .lines()
        .find_map(|l| l.strip_prefix("records:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Leave less room than the rest of the binlogs need.
    let filler = fill(&fs.0, 256 << 10);
    let mut a = vec!["ingest", "--store", s];
    a.extend(logs.iter().map(String::as_str));
    let o = run(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "ingest on a full disk exited 0: {err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("ingest stopped: every transaction through seq"),
        "no summary of what was acknowledged: {err}"
    );
    // The summary's seq is what the store holds.
    let said: u64 = err
        .split("through seq ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(said >= stored_before, "{err}");
    std::fs::remove_file(&filler).unwrap();
    let st = ok(&["stats", "--store", s]);
    assert!(
        st.contains(&format!("..{said}")),
        "stats {st} vs summary {said}"
    );
    ok(&a);
    assert_eq!(
        ok(&["dump", "--store", s]),
        reference,
        "the resumed store differs"
    );

    // A consumer's commit on a full disk.
    let g = ok(&[
        "group", "create", "--store", s, "--name", "g", "--user", "reader",
    ]);
    let g = g.lines().last().unwrap().trim().to_owned();
    let consume = |extra: &[&str]| {
        let mut a = vec![
            "consume", "--store", s, "--group", &g, "--user", "reader", "--format", "jsonl",
        ];
        a.extend(extra);
        run(&a)
    };
    let first = consume(&["--until-end", "--commit"]);
    assert!(first.status.success());
    let committed = ok(&["group", "list", "--store", s, "--format", "jsonl"]);
    let filler = fill(&fs.0, 0);
    // Everything is committed already: a new record is needed for a commit to write.
    // Instead commit an earlier position again from a fresh group.
    let g2 = run(&[
        "group", "create", "--store", s, "--name", "g2", "--user", "reader",
    ]);
    if g2.status.success() {
        let g2 = String::from_utf8_lossy(&g2.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned();
        let o = run(&[
            "consume",
            "--store",
            s,
            "--group",
            &g2,
            "--user",
            "reader",
            "--until-end",
            "--commit",
            "--format",
            "jsonl",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "a commit on a full disk exited 0");
        assert!(err.contains("No space left on device"), "{err}");
        std::fs::remove_file(&filler).unwrap();
        // The group resumes from where it was (nothing committed), and reads everything.
        let o = run(&[
            "consume",
            "--store",
            s,
            "--group",
            &g2,
            "--user",
            "reader",
            "--until-end",
            "--commit",
            "--format",
            "jsonl",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout, first.stdout, "the group lost or repeated records");
    } else {
        // Creating the group itself failed on the full disk, with an error.
        let err = String::from_utf8_lossy(&g2.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        std::fs::remove_file(&filler).unwrap();
    }
    // The first group's commit is intact.
    let now = ok(&["group", "list", "--store", s, "--format", "jsonl"]);
    let line = |t: &str| {
        t.lines()
            .find(|l| l.contains(&format!("\"id\":\"{g}\"")))
            .map(str::to_owned)
            .unwrap()
    };
    assert_eq!(line(&now), line(&committed));
}

#[test]
fn a_store_on_a_read_only_file_system_reads_and_refuses_writes() {
    let Some(fs) = mount_or_skip("ro", 64 << 20) else {
        return;
    };
    let store = fs.0.join("store");
    let s = store.to_str().unwrap();
    let logs = binlogs();
    let mut a = vec!["ingest", "--store", s];
    a.extend(logs.iter().map(String::as_str));
    ok(&a);
    let g = ok(&[
        "group", "create", "--store", s, "--name", "g", "--user", "reader",
    ]);
    let g = g.lines().last().unwrap().trim().to_owned();
    let dump = ok(&["dump", "--store", s]);
    let range = ok(&["range", "--store", s]);
    fs.remount("ro");
    assert_eq!(ok(&["dump", "--store", s]), dump);
    assert_eq!(ok(&["range", "--store", s]), range);
    let o = run(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "ingest on a read-only store exited 0");
    assert!(err.contains("Read-only file system"), "{err}");
    let o = run(&[
        "consume",
        "--store",
        s,
        "--group",
        &g,
        "--user",
        "reader",
        "--until-end",
        "--commit",
        "--format",
        "jsonl",
    ]);
    assert!(
        !o.status.success(),
        "a commit on a read-only store exited 0"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    fs.remount("rw");
    assert_eq!(ok(&["dump", "--store", s]), dump);
}
