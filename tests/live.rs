//! Tracking a running MariaDB as a replica (each test starts its own server on 127.0.0.1):
//! precheck, streaming with `kill -9` of the tracker and a server restart in the middle of a
//! workload, and exact resume.

#[path = "support/mariadb.rs"]
mod mariadb;

#[path = "support/proc.rs"]
mod proc;
use proc::Proc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use changetrack::filter::Filter;
use changetrack::source::live::{precheck, LiveOptions, SourceUrl, StartPosition};
use changetrack::store::ReadFrom;
use changetrack::{BinlogOptions, BinlogReader, ChangeRecord, Op, Store, StoreOptions};
use mariadb::MariaDb;

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const PW: &str = "Repl_pass1";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-live-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(server_id: u32) -> LiveOptions {
    LiveOptions {
        server_id,
        start: StartPosition::Earliest,
        ..LiveOptions::default()
    }
}

#[test]
fn precheck_reports_each_item_with_a_fix() {
    if !MariaDb::required("precheck_reports_each_item_with_a_fix") {
        return;
    }
    let m = MariaDb::start("precheck", &[]);
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE USER weak@'%' IDENTIFIED BY '{PW}';"
    ));
    let url: SourceUrl = m.url("repl", PW).parse().unwrap();
    let all = precheck(&url, &opts(77), &Filter::default(), None).unwrap();
    for i in &all {
        assert!(i.passed, "{i:?}");
    }
    assert_eq!(all.len(), 10);
    // Missing privileges, named.
    let weak: SourceUrl = m.url("weak", PW).parse().unwrap();
    let r = precheck(&weak, &opts(77), &Filter::default(), None).unwrap();
    let p = r.iter().find(|i| i.name.starts_with("privileges")).unwrap();
    assert!(!p.passed && p.detail.contains("REPLICATION SLAVE") && p.fix.contains("GRANT"));
    // Wrong password: the connection item fails, and nothing else is tried.
    let bad: SourceUrl = m.url("repl", "Wrong_pass9").parse().unwrap();
    let r = precheck(&bad, &opts(77), &Filter::default(), None).unwrap();
    assert_eq!(r.len(), 1);
    assert!(!r[0].passed && !r[0].detail.contains("Wrong_pass9"));
    // Settings: row image and format.
    m.sql(
        "SET GLOBAL binlog_row_image = 'MINIMAL'; SET GLOBAL binlog_format = 'STATEMENT';
         SET GLOBAL binlog_row_metadata = 'MINIMAL'",
    );
    let r = precheck(&url, &opts(77), &Filter::default(), None).unwrap();
    let meta = r
        .iter()
        .find(|i| i.name.starts_with("column metadata"))
        .unwrap();
    assert!(
        meta.passed && meta.detail.contains("schema history"),
        "{meta:?}"
    );
    for name in ["binlog_format is ROW", "binlog_row_image is FULL"] {
        let i = r.iter().find(|i| i.name == name).unwrap();
        assert!(!i.passed && i.fix.contains("SET GLOBAL"), "{i:?}");
    }
    m.sql(
        "SET GLOBAL binlog_row_image = 'FULL'; SET GLOBAL binlog_format = 'ROW';
         SET GLOBAL binlog_row_metadata = 'FULL'",
    );
    // The server's own id clashes.
    let r = precheck(&url, &opts(1), &Filter::default(), None).unwrap();
    assert!(
        !r.iter()
            .find(|i| i.name.contains("server id"))
            .unwrap()
            .passed
    );
    // A purged start position names the oldest binlog still there.
    m.sql("FLUSH BINARY LOGS; FLUSH BINARY LOGS;");
    let newest = m
        .binlogs()
        .last()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The server keeps a log until its binlog checkpoint has moved past it: retry a while.
    let t0 = Instant::now();
    while m.binlogs()[0].file_name().unwrap() != newest.as_str() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server does not purge"
        );
        m.sql(&format!("PURGE BINARY LOGS TO '{newest}'"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = LiveOptions {
        start: StartPosition::FilePos("mariadb-bin.000001".into(), 4),
        ..opts(77)
    };
    let r = precheck(&url, &o, &Filter::default(), None).unwrap();
    let i = r
        .iter()
        .find(|i| i.name.contains("start position"))
        .unwrap();
    assert!(!i.passed && i.detail.contains(&newest), "{i:?}");
    // The CLI prints every item and fails with exit code 8 (precheck failed, not 2: bad usage)
    // on a failed one.
    let out = Command::new(BIN)
        .args([
            "precheck",
            "--source",
            &m.url("weak", PW),
            "--server-id",
            "77",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL privileges") && text.contains("fix: GRANT"),
        "{text}"
    );
    assert!(!text.contains(PW) && !String::from_utf8_lossy(&out.stderr).contains(PW));
    // `ingest --source` runs the same precheck first and fails with the same exit code, naming
    // the item and its fix, before it creates anything.
    let store = tmp("precheck-store");
    let out = Command::new(BIN)
        .args(["ingest", "--store"])
        .arg(&store)
        .args(["--source", &m.url("weak", PW), "--server-id", "77"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(
        err.contains("precheck failed") && err.contains("privileges") && err.contains("GRANT"),
        "{err}"
    );
    assert!(!err.contains(PW));
    assert!(!store.exists(), "a failed precheck created the store");
}

fn tracker(store: &Path, url: &str) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["-q", "ingest", "--store"])
            .arg(store)
            .args([
                "--source",
                url,
                "--server-id",
                "4711",
                "--start",
                "earliest",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn kill9(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// The server's current binlog position as a store checkpoint.
fn server_position(m: &MariaDb) -> (String, u64) {
    let line = m.sql("SHOW MASTER STATUS");
    let mut f = line.split('\t');
    let file = f.next().unwrap().trim().to_owned();
    let pos = f.next().unwrap().trim().parse().unwrap();
    (file, pos)
}

fn wait_caught_up(store: &Path, m: &MariaDb) -> Duration {
    let t0 = Instant::now();
    let (file, pos) = server_position(m);
    // The tracker may still be creating the store.
    let st = loop {
        match Store::open(
            store,
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            },
        ) {
            Ok(s) => break s,
            Err(e) => {
                assert!(t0.elapsed() < Duration::from_secs(60), "{e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    loop {
        st.refresh().unwrap();
        if let Some(p) = st.source_position().unwrap() {
            if p.file_name == file && p.offset >= pos {
                return t0.elapsed();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the tracker did not reach {file}:{pos}: {:?}",
            st.source_position()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn workload_round(m: &MariaDb, round: u32) {
    let r = round;
    let mut sql = format!(
        "USE live;
         BEGIN;
         INSERT INTO t (id, n, d, s, dt, j) VALUES ({a}, {r}, {r}.25, 'row {r}', '2024-01-{day:02} 10:00:{sec:02}', '{{\"r\": {r}}}'),
                                               ({b}, NULL, -{r}.5, NULL, NULL, NULL);
         UPDATE t SET n = COALESCE(n, 0) + 1, s = CONCAT('upd ', id) WHERE id % 3 = {m3};
         DELETE FROM t WHERE id = {del};
         INSERT INTO kv (k, v) VALUES ({r}, REPEAT('x', {r}));
         COMMIT;
         BEGIN; INSERT INTO t (id, n) VALUES ({rb}, 1); ROLLBACK;",
        a = r * 10,
        b = r * 10 + 1,
        day = r % 28 + 1,
        sec = r % 60,
        m3 = r % 3,
        del = (r - 1) * 10 + 1,
        rb = 100_000 + r
    );
    if r.is_multiple_of(4) {
        sql.push_str(&format!(" ALTER TABLE kv ADD COLUMN c{r} INT DEFAULT {r};"));
    }
    m.sql(&sql);
}

/// The stored stream (heartbeats aside, seqs cleared) equals the decode of the server's own
/// binlog files, record for record; returns it.
fn assert_stored_equals_files(st: &Store, m: &MariaDb) -> Vec<ChangeRecord> {
    let stored: Vec<ChangeRecord> = st
        .iter(ReadFrom::Earliest)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.op != Op::Heartbeat)
        .map(|r| ChangeRecord { seq: 0, ..r })
        .collect();
    let want = decode_all(&m.binlogs());
    assert_eq!(stored.len(), want.len(), "record counts differ");
    for (i, (a, b)) in stored.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "record {i} differs");
    }
    stored
}

fn decode_all(files: &[PathBuf]) -> Vec<ChangeRecord> {
    BinlogReader::open(files, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn live_tracking_survives_kill9_and_a_server_restart_exactly_once() {
    if !MariaDb::required("live_tracking_survives_kill9_and_a_server_restart_exactly_once") {
        return;
    }
    let mut m = MariaDb::start("stream", &[]);
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE DATABASE live;
         CREATE TABLE live.t (id INT PRIMARY KEY, n BIGINT, d DECIMAL(10,2), s VARCHAR(40),
                              dt DATETIME(3), j JSON, u TINYINT UNSIGNED DEFAULT 200,
                              b VARBINARY(8) DEFAULT 0x00ff, e ENUM('a','b') DEFAULT 'b');
         CREATE TABLE live.kv (k INT PRIMARY KEY, v TEXT);"
    ));
    let url = m.url("repl", PW);
    let store = tmp("store");
    let mut child = tracker(&store, &url);
    let mut kills = 0;
    for round in 1..=24 {
        workload_round(&m, round);
        if round % 5 == 0 {
            // kill -9 at a random-ish moment: right after a round, or while it streams.
            std::thread::sleep(Duration::from_millis(u64::from(round) * 7 % 40));
            kill9(&mut child);
            kills += 1;
            child = tracker(&store, &url);
        }
        if round == 12 {
            m.restart();
        }
    }
    // One more transaction, then measure how soon the store has it.
    m.sql("INSERT INTO live.kv (k, v) VALUES (9999, 'last')");
    let lag = wait_caught_up(&store, &m);
    eprintln!("{kills} kills, a server restart; the last transaction was stored {lag:?} after COMMIT returned (including the poll)");
    // SIGTERM: a clean stop at a transaction boundary.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "tracker exit: {st}");

    // Exactly once: the stored stream (heartbeats aside) equals the decode of the server's own
    // binlog files, record for record.
    let store_h = Store::open(&store, StoreOptions::default()).unwrap();
    let stored = assert_stored_equals_files(&store_h, &m);
    // A consumer's replay of the store equals the server's tables.
    let mut rows: std::collections::BTreeMap<
        (String, String),
        std::collections::BTreeMap<String, Vec<String>>,
    > = Default::default();
    for r in &stored {
        let Some(t) = r.table.as_deref() else {
            continue;
        };
        let key = |img: &Vec<changetrack::Value>| {
            changetrack::query::value_text(&img[0], &t.fields[0])
                .map(|s| s.into_owned())
                .unwrap_or_default()
        };
        let text = |img: &Vec<changetrack::Value>| {
            img.iter()
                .zip(&t.fields)
                .map(|(v, f)| match v {
                    // Binary strings as hex (the test selects HEX(b) from the server).
                    changetrack::Value::Bytes(b) if f.kind == changetrack::ColumnKind::Binary => {
                        b.iter().map(|x| format!("{x:02X}")).collect()
                    }
                    _ => changetrack::query::value_text(v, f)
                        .map_or_else(|| "NULL".to_owned(), |s| s.into_owned()),
                })
                .collect::<Vec<_>>()
        };
        let tab = rows
            .entry((t.database.clone(), t.table.clone()))
            .or_default();
        match r.op {
            Op::Insert => {
                let a = r.after.as_ref().unwrap();
                tab.insert(key(a), text(a));
            }
            Op::Update => {
                tab.remove(&key(r.before.as_ref().unwrap()));
                let a = r.after.as_ref().unwrap();
                tab.insert(key(a), text(a));
            }
            Op::Delete => {
                tab.remove(&key(r.before.as_ref().unwrap()));
            }
            _ => {}
        }
    }
    // kv: the columns its rows were written with (ALTER TABLE ... ADD COLUMN fills older rows
    // with the default without a row event; a consumer applies that from the DDL record).
    for (table, cols) in [("t", "id, n, d, s, dt, j, u, HEX(b), e"), ("kv", "k, v")] {
        let server = m.sql(&format!("SELECT {cols} FROM live.{table} ORDER BY 1"));
        let replayed = &rows[&("live".to_owned(), table.to_owned())];
        let n = cols.split(',').count();
        let mine: Vec<String> = replayed
            .values()
            .map(|v| v[..n.min(v.len())].join("\t"))
            .collect();
        let mut theirs: Vec<String> = server.lines().map(str::to_owned).collect();
        let mut mine_sorted = mine.clone();
        // Both ordered by the primary key as a number.
        let k = |l: &String| l.split('\t').next().unwrap().parse::<i64>().unwrap();
        theirs.sort_by_key(k);
        mine_sorted.sort_by_key(k);
        assert_eq!(mine_sorted, theirs, "table {table}");
    }
    drop(store_h);
    std::fs::remove_dir_all(&store).unwrap();
}

/// The corpus workload (every column type, keys, DDL between DML, savepoints, rollbacks,
/// MyISAM, XA, rotations) streamed live, with MariaDB's compressed events on: the stored stream
/// equals the decode of the server's binlog files (which `tests/replay.rs` checks against the
/// server's own SELECT output for this workload).
#[test]
fn the_corpus_workload_streams_exactly_as_its_files_decode() {
    if !MariaDb::required("the_corpus_workload_streams_exactly_as_its_files_decode") {
        return;
    }
    let m = MariaDb::start(
        "workload",
        &["--log-bin-compress=ON", "--log-bin-compress-min-len=10"],
    );
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';"
    ));
    let store = tmp("workload");
    let mut child = tracker(&store, &m.url("repl", PW));
    m.sql_file(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/binlogs/mariadb-10.11/workload.sql"),
    );
    wait_caught_up(&store, &m);
    kill9(&mut child);
    let st = Store::open(&store, StoreOptions::default()).unwrap();
    let stored = assert_stored_equals_files(&st, &m);
    assert!(stored.len() > 500, "{}", stored.len());
    drop(st);
    std::fs::remove_dir_all(&store).unwrap();
}

/// Issue 14's case, live: MariaDB counts GEOMETRY columns in the TABLE_MAP charset metadata, so
/// a CHAR after a POINT must keep its own charset (utf8mb4) and its value when streamed.
#[test]
fn a_char_after_a_geometry_column_streams_with_its_charset() {
    if !MariaDb::required("a_char_after_a_geometry_column_streams_with_its_charset") {
        return;
    }
    let m = MariaDb::start("geometry", &[]);
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE DATABASE geo CHARACTER SET utf8mb4;
         CREATE TABLE geo.place (id INT PRIMARY KEY, pos POINT NOT NULL, label CHAR(10))
           ENGINE=InnoDB;
         INSERT INTO geo.place VALUES (1, ST_GeomFromText('POINT(120.15 30.28)'), 'hz');"
    ));
    let store = tmp("geometry");
    let mut child = tracker(&store, &m.url("repl", PW));
    wait_caught_up(&store, &m);
    kill9(&mut child);
    let st = Store::open(&store, StoreOptions::default()).unwrap();
    let stored = assert_stored_equals_files(&st, &m);
    let rec = stored
        .iter()
        .find(|r| r.op == Op::Insert && r.table_name() == Some("place"))
        .expect("the INSERT was streamed");
    let label = &rec.fields()[2];
    assert_eq!(
        (label.name.as_str(), label.charset),
        ("label", Some("utf8mb4"))
    );
    assert_eq!(
        rec.after.as_ref().unwrap()[2],
        changetrack::Value::Bytes(bytes::Bytes::from_static(b"hz"))
    );
    drop(st);
    std::fs::remove_dir_all(&store).unwrap();
}

/// binlog_row_metadata=MINIMAL: the binlog has no column names. The schema history (read from
/// information_schema at the start and after every DDL) names them, version by version, across
/// ALTER TABLEs that add, drop and reorder columns; unsigned columns keep their range; and the
/// server's binlog files, decoded with the same history, get the same names.
#[test]
fn minimal_metadata_names_follow_alter_table() {
    if !MariaDb::required("minimal_metadata_names_follow_alter_table") {
        return;
    }
    let m = MariaDb::start("minimal", &["--binlog-row-metadata=MINIMAL"]);
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE DATABASE live;
         CREATE TABLE live.m (id INT PRIMARY KEY, a TINYINT UNSIGNED, b VARCHAR(10),
                              e ENUM('x','y'));"
    ));
    let store = tmp("minimal");
    let mut child = tracker(&store, &m.url("repl", PW));
    wait_caught_up(&store, &m);
    // (statements, the column names the following rows must have)
    let steps: [(&str, &[&str]); 4] = [
        (
            "INSERT INTO live.m VALUES (1, 200, 'one', 'y')",
            &["id", "a", "b", "e"],
        ),
        (
            "ALTER TABLE live.m ADD COLUMN c BIGINT DEFAULT 7 AFTER id;
             INSERT INTO live.m (id, a, b, c) VALUES (2, 201, 'two', 8)",
            &["id", "c", "a", "b", "e"],
        ),
        (
            "ALTER TABLE live.m DROP COLUMN a;
             UPDATE live.m SET b = 'upd' WHERE id = 1",
            &["id", "c", "b", "e"],
        ),
        (
            "ALTER TABLE live.m MODIFY COLUMN b VARCHAR(10) FIRST, RENAME COLUMN c TO cc;
             DELETE FROM live.m WHERE id = 2",
            &["b", "id", "cc", "e"],
        ),
    ];
    for (sql, _) in &steps {
        m.sql(sql);
        // The history is read when the tracker meets the DDL: here it keeps up.
        wait_caught_up(&store, &m);
    }
    kill9(&mut child);
    let st = Store::open(&store, StoreOptions::default()).unwrap();
    let rows: Vec<ChangeRecord> = st
        .iter(ReadFrom::Earliest)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.op.is_dml())
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (r, (_, names)) in rows.iter().zip(&steps) {
        let t = r.table.as_deref().unwrap();
        assert!(!t.names_missing, "names missing at {}", r.checkpoint);
        let got: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(&got, names, "at {}", r.checkpoint);
    }
    // Unsigned and ENUM labels came with the names.
    let first = &rows[0];
    let j: serde_json::Value =
        serde_json::from_str(&changetrack::record::json::to_json(first, false)).unwrap();
    assert_eq!(j["after"]["a"], 200);
    assert_eq!(j["after"]["e"], "y");
    assert_eq!(j["primary_key"], serde_json::json!(["id"]));
    // The server's own files, decoded with the store's schema history, get the same names.
    let mut reader = BinlogReader::open(&m.binlogs(), BinlogOptions::default()).unwrap();
    reader.set_schema_lookup(st.schema_lookup());
    let from_files: Vec<ChangeRecord> = reader
        .map(Result::unwrap)
        .filter(|r| r.op.is_dml() && r.database_name() == Some("live"))
        .collect();
    let names = |v: &[ChangeRecord]| -> Vec<Vec<String>> {
        v.iter()
            .map(|r| {
                r.table
                    .as_deref()
                    .unwrap()
                    .fields
                    .iter()
                    .map(|f| f.name.clone())
                    .collect()
            })
            .collect()
    };
    assert_eq!(names(&from_files), names(&rows));
    drop(st);
    std::fs::remove_dir_all(&store).unwrap();
}

/// Makes a CA and a server certificate for 127.0.0.1 with openssl; returns (ca, cert, key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=changetrack test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// TLS: a user that REQUIRE SSL cannot connect in clear; with --tls-ca the precheck passes and
/// changes stream over TLS, the server's certificate verified against the CA.
#[test]
fn tls_connections_verify_the_server() {
    if !MariaDb::required("tls_connections_verify_the_server") {
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CHANGETRACK_REQUIRE_SERVERS").is_none(),
            "openssl is required (CHANGETRACK_REQUIRE_SERVERS) but not installed"
        );
        eprintln!("SKIPPED: tls_connections_verify_the_server (openssl is not installed)");
        return;
    }
    let certs = tmp("certs");
    let (ca, cert, key) = make_certs(&certs);
    let m = MariaDb::start(
        "tls",
        &[
            &format!("--ssl-ca={}", ca.display()),
            &format!("--ssl-cert={}", cert.display()),
            &format!("--ssl-key={}", key.display()),
        ],
    );
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}' REQUIRE SSL;
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE DATABASE live; CREATE TABLE live.t (id INT PRIMARY KEY, v VARCHAR(10));"
    ));
    let url = m.url("repl", PW);
    let ca_s = ca.to_str().unwrap();
    // In clear: refused.
    let out = Command::new(BIN)
        .args(["precheck", "--source", &url, "--server-id", "77"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL connection"));
    // Over TLS, verified: every item passes.
    let out = Command::new(BIN)
        .args([
            "precheck",
            "--source",
            &url,
            "--server-id",
            "77",
            "--tls-ca",
            ca_s,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("over TLS"), "{text}");
    // A certificate from another CA is rejected.
    let other = tmp("other-certs");
    let (other_ca, _, _) = make_certs(&other);
    let out = Command::new(BIN)
        .args([
            "precheck",
            "--source",
            &url,
            "--server-id",
            "77",
            "--tls-ca",
        ])
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Streaming over TLS.
    let store = tmp("tls-store");
    let mut child = Command::new(BIN)
        .args(["-q", "ingest", "--store"])
        .arg(&store)
        .args([
            "--source",
            &url,
            "--server-id",
            "4711",
            "--start",
            "earliest",
            "--tls-ca",
            ca_s,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    m.sql("INSERT INTO live.t VALUES (1, 'secret'), (2, 'data')");
    wait_caught_up(&store, &m);
    kill9(&mut child);
    let st = Store::open(&store, StoreOptions::default()).unwrap();
    let n = st
        .iter(ReadFrom::Earliest)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.op == Op::Insert)
        .count();
    assert_eq!(n, 2);
    drop(st);
    for d in [&store, &certs, &other] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A stalled stream (the server frozen with SIGSTOP: the connection stays open but nothing, not
/// even a heartbeat, arrives) is detected by the read deadline and the tracker reconnects.
#[test]
fn a_stalled_stream_is_detected_and_reconnected() {
    if !MariaDb::required("a_stalled_stream_is_detected_and_reconnected") {
        return;
    }
    let m = MariaDb::start("stall", &[]);
    m.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{PW}';
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%';
         CREATE DATABASE live; CREATE TABLE live.t (id INT PRIMARY KEY);"
    ));
    let store = tmp("stall");
    let log = store.with_extension("log");
    let mut child = Command::new(BIN)
        .args(["ingest", "--store"])
        .arg(&store)
        .args([
            "--source",
            &m.url("repl", PW),
            "--server-id",
            "4711",
            "--start",
            "earliest",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_caught_up(&store, &m);
    let pid = m.pid().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    // Longer than the read deadline (5 s, heartbeats every second).
    std::thread::sleep(Duration::from_secs(7));
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    m.sql("INSERT INTO live.t VALUES (1), (2), (3)");
    wait_caught_up(&store, &m);
    kill9(&mut child);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("reconnecting"),
        "no reconnect logged: {stderr}"
    );
    let st = Store::open(&store, StoreOptions::default()).unwrap();
    let n = st
        .iter(ReadFrom::Earliest)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.op == Op::Insert)
        .count();
    assert_eq!(n, 3);
    drop(st);
    std::fs::remove_dir_all(&store).unwrap();
    let _ = std::fs::remove_file(&log);
}
