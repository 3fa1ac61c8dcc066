//! Issue 13, items 10 and 12-14: the CLI's behaviour on mistakes and faults that need no
//! server. `ingest --source` against a closed port (interruptible waits, no store made before
//! the server answers, a bounded retry option); every command writing to a closed pipe; `query`
//! rejecting malformed conditions and unknown names; the demo's closing hint; `objects list
//! --store`; the query table with wide characters; and `decode` and `ingest` reporting the same
//! resume offset for a truncated binlog.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-clierr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .env_remove("CHANGETRACK_PASSWORD")
        .env_remove("CHANGETRACK_SOURCE_PASSWORD")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run changetrack")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A store ingested from the MariaDB corpus (row-metadata-full).
fn corpus_store(name: &str) -> PathBuf {
    let store = tmp(name);
    let src = root().join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    let out = cli(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--sync",
        "never",
        src.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "ingest: {}", text(&out.stderr));
    store
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Every file in `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (e.path(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Starts `ingest --source` against a closed port, lets it retry, stops it with `sig` and
/// returns (exit code, stdout, stderr, time from the signal to the exit).
fn ingest_closed_port_then(store: &Path, sig: &str) -> (Option<i32>, String, String, Duration) {
    let url = format!("mysql://repl:Repl_pass1@127.0.0.1:{}", closed_port());
    let mut child = Command::new(BIN)
        .args([
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--source",
            &url,
        ])
        .env_remove("CHANGETRACK_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for a few attempts and a backoff wait of 800 ms or more to be under way.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest --source gave up on a closed port"
    );
    assert!(
        !store.join("CURRENT").exists() || store.exists(),
        "unexpected store state"
    );
    let t0 = Instant::now();
    kill(child.id(), sig);
    let status = child.wait().unwrap();
    let took = t0.elapsed();
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), out, err, took)
}

#[test]
fn ingest_source_on_a_closed_port_stops_at_once_and_creates_nothing() {
    let store = tmp("closed-port");
    let (code, out, err, took) = ingest_closed_port_then(&store, "-TERM");
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        took < Duration::from_millis(500),
        "SIGTERM took {took:?} (the backoff wait is not interruptible)"
    );
    assert!(out.contains("ingested 0 transactions"), "{out}");
    // Each attempt is logged.
    assert!(
        err.matches("attempt").count() >= 2 && err.contains("cannot connect"),
        "{err}"
    );
    assert!(
        !store.exists(),
        "the store directory was created before the server answered"
    );
}

#[test]
fn ingest_source_on_a_closed_port_leaves_an_existing_store_untouched() {
    let store = corpus_store("closed-port-existing");
    let before = listing(&store);
    let (code, out, err, took) = ingest_closed_port_then(&store, "-INT");
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(took < Duration::from_millis(500), "SIGINT took {took:?}");
    assert!(out.contains("ingested 0 transactions"), "{out}");
    assert_eq!(before, listing(&store), "the store changed");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn ingest_source_max_retries_gives_up() {
    let store = tmp("max-retries");
    let url = format!("mysql://repl:Repl_pass1@127.0.0.1:{}", closed_port());
    let t0 = Instant::now();
    let out = cli(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--source",
        &url,
        "--max-retries",
        "2",
        "--connect-timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!store.exists());
}

/// Runs a command with its stdout a pipe whose reading end is already closed.
fn into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Command::new(BIN)
        .args(args)
        .env_remove("CHANGETRACK_LOG")
        .env_remove("CHANGETRACK_PASSWORD")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_command_writing_to_a_closed_pipe_exits_quietly() {
    let store = corpus_store("pipe");
    let s = store.to_str().unwrap();
    let demo = tmp("pipe-demo");
    let src = root().join("tests/data/binlogs/mariadb-10.11/row-metadata-full");
    let g = cli(&["group", "list", "--store", s]);
    assert!(g.status.success());
    let cases: Vec<Vec<&str>> = vec![
        vec!["demo", "--store", demo.to_str().unwrap()],
        vec!["decode", src.to_str().unwrap()],
        vec!["decode", "--format", "text", src.to_str().unwrap()],
        vec!["dump", "--store", s],
        vec!["range", "--store", s],
        vec!["stats", "--store", s],
        vec![
            "query",
            "--store",
            s,
            "--format",
            "table",
            "--from-time",
            "0",
        ],
        vec![
            "query",
            "--store",
            s,
            "--format",
            "jsonl",
            "--from-time",
            "0",
        ],
        vec!["show", "--store", s, "5"],
        vec!["objects", "--store", s, "list"],
        vec!["group", "list", "--store", s],
        vec!["--help"],
    ];
    for args in cases {
        let out = into_closed_pipe(&args);
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("backtrace"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // The case as reported: `demo | head -1`.
    let demo2 = tmp("pipe-demo2");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{BIN}' demo --store '{}' 2>&1 | head -1",
            demo2.display()
        ))
        .env_remove("CHANGETRACK_PASSWORD")
        .output()
        .unwrap();
    let all = text(&out.stdout);
    assert!(all.starts_with("== changetrack demo"), "{all}");
    for d in [&store, &demo, &demo2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn query_rejects_malformed_conditions_and_unknown_names() {
    let store = corpus_store("query");
    let s = store.to_str().unwrap();
    let q = |extra: &[&str]| {
        let mut args = vec![
            "query",
            "--store",
            s,
            "--from-time",
            "0",
            "--format",
            "jsonl",
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    // Sanity: a good query works.
    let ok = q(&["--table", "corpus.t_int", "--where", "pk >= 2"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(!ok.stdout.is_empty());
    let cases: [(&[&str], &[&str]); 8] = [
        (&["--where", "pk =="], &["unknown operator", "=="]),
        (&["--where", "pk = = 3"], &["unknown operator"]),
        (&["--where", "pk = 'abc"], &["quote"]),
        (
            &["--where", "middle.pk = 1"],
            &["middle", "before. and after."],
        ),
        (
            &["--table", "corpus.t_int", "--where", "nosuch = 1"],
            &["no column \"nosuch\" in corpus.t_int", "pk", "biu"],
        ),
        (
            &["--where", "nosuch = 1"],
            &[
                "no column \"nosuch\" in any stored table",
                "the columns: a, b,",
                "more",
            ],
        ),
        (
            &["--table", "nosuch.table"],
            &["no table nosuch.table", "corpus.t_int", "corpus.t_cpk"],
        ),
        (
            &["--table", "corpus.nosuch"],
            &[
                "no table corpus.nosuch",
                "the tables of corpus",
                "corpus.t_int",
            ],
        ),
    ];
    for (args, wants) in cases {
        let out = q(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = q(&["--database", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("corpus"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn query_table_aligns_wide_characters() {
    use unicode_width::UnicodeWidthStr;
    let store = corpus_store("cjk");
    let out = cli(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--table",
        "corpus.t_cpk",
        "--from-time",
        "0",
        "--format",
        "table",
        "--limit",
        "50",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("杭州市"), "{t}");
    // Where the "Change Type" column starts, in terminal cells, on every row.
    let header = t.lines().find(|l| l.starts_with("Database")).unwrap();
    let col = header.find("Change Type").unwrap();
    let mut rows = 0;
    for line in t.lines().filter(|l| l.starts_with("corpus")) {
        let at = ["INSERT", "UPDATE", "DELETE", "DDL"]
            .iter()
            .filter_map(|op| line.find(&format!("  {op}  ")).map(|i| i + 2))
            .min()
            .unwrap_or_else(|| panic!("no change type in {line:?}"));
        assert_eq!(line[..at].width(), col, "misaligned: {line:?}\n{t}");
        rows += 1;
    }
    assert!(rows >= 3, "{t}");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn demo_hint_gives_a_consume_command_that_works() {
    let store = tmp("demo-hint");
    let out = cli(&["demo", "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let line = t
        .lines()
        .find(|l| l.contains("changetrack consume"))
        .unwrap_or_else(|| panic!("no consume hint in {t}"));
    let cmd = line
        .trim()
        .replacen("changetrack consume", &format!("'{BIN}' consume"), 1);
    let run = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env_remove("CHANGETRACK_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{cmd}: {}", text(&run.stderr));
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn objects_takes_store_before_or_after_the_subcommand() {
    let store = corpus_store("objects");
    let s = store.to_str().unwrap();
    let a = cli(&["objects", "--store", s, "list"]);
    let b = cli(&["objects", "list", "--store", s]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert!(text(&a.stdout).starts_with("tracking:"));
    let c = cli(&["objects", "list"]);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c.stderr));
    assert!(text(&c.stderr).contains("--store"));
    let _ = std::fs::remove_dir_all(&store);
}

/// The offset in "resume from offset N" (decode) or "resume position N@I" (ingest).
fn number_after(text: &str, marker: &str) -> u64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {text}"))
        + marker.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn decode_and_ingest_report_the_same_resume_offset_for_a_truncated_file() {
    let file = root().join("tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000002");
    let bytes = std::fs::read(&file).unwrap();
    let dir = tmp("truncated");
    std::fs::create_dir_all(&dir).unwrap();
    let mut differed_from_event = 0;
    for cut in [
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() * 2 / 3,
        bytes.len() - 7,
    ] {
        let cut_file = dir.join("mariadb-bin.000002");
        std::fs::write(&cut_file, &bytes[..cut]).unwrap();
        let d = cli(&["decode", cut_file.to_str().unwrap()]);
        assert_eq!(d.status.code(), Some(3), "{}", text(&d.stderr));
        let derr = text(&d.stderr);
        let from_decode = number_after(&derr, "resume from offset ");
        let event_at = number_after(&derr, "offset ");
        if event_at != from_decode {
            differed_from_event += 1;
        }
        let store = dir.join(format!("store-{cut}"));
        let i = cli(&[
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--sync",
            "never",
            cut_file.to_str().unwrap(),
        ]);
        assert!(i.status.success(), "{}", text(&i.stderr));
        let iout = text(&i.stdout);
        assert!(iout.contains("stopped at a partial event"), "{iout}");
        let from_ingest = number_after(&iout, "resume position ");
        assert_eq!(
            from_decode, from_ingest,
            "cut at {cut}: decode says {derr}, ingest says {iout}"
        );
        // Resuming there loses nothing: the records of the full file after that offset are
        // exactly those ingest did not store.
        assert!(from_decode <= cut as u64);
    }
    // The cuts fall inside transactions: the resume point is the transaction's start, not the
    // partial event's.
    assert!(differed_from_event > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
