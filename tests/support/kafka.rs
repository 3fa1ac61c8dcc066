//! Kafka endpoint tests: a store with varied times, an in-process server, and the client
//! drivers of `tests/clients/` (one command line and one JSON-lines output for every client).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use changetrack::record::avro;
use changetrack::store::SourcePosition;
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, Checkpoint, ReadFrom, Store, StoreOptions, SyncMode,
};
use changetrack_kafka::{Server, ServerHandle, ServerOptions};

pub const PW: &str = "Secret_pass1";
pub const TOPIC: &str = "cdc";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ct-kafka-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The corpus's MariaDB 10.11 records (every column type, DDL, transactions).
pub fn corpus_records() -> Vec<ChangeRecord> {
    let paths: Vec<PathBuf> = (1..=3)
        .map(|n| {
            root().join(format!(
                "tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.00000{n}"
            ))
        })
        .collect();
    BinlogReader::open(&paths, BinlogOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A stored record as the endpoint must serve it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub seq: u64,
    pub timestamp: u32,
    pub avro: Vec<u8>,
}

/// A store being written: copies of the corpus records, 20 records per second of source time
/// from `base_time`, with increasing checkpoints (840 records per round).
pub struct Writer {
    pub store: Store,
    corpus: Vec<ChangeRecord>,
    base_time: u32,
    n: u32,
}

impl Writer {
    pub fn create(path: &Path, base_time: u32) -> Self {
        let store = Store::open(
            path,
            StoreOptions {
                sync: SyncMode::Never,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        Self {
            store,
            corpus: corpus_records(),
            base_time,
            n: 0,
        }
    }

    /// Appends one more copy of the corpus, in transactions of 10 records.
    pub fn append_round(&mut self) {
        self.append(self.corpus.len());
    }

    /// Appends the next `count` records (the corpus over and over), in transactions of 10.
    pub fn append(&mut self, count: usize) {
        let len = self.corpus.len();
        let mut left = count;
        while left > 0 {
            let at = self.n as usize % len;
            let take = left.min(10).min(len - at);
            let round = self.n / len as u32;
            let recs: Vec<ChangeRecord> = self.corpus[at..at + take]
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.timestamp = self.base_time + self.n / 20;
                    self.n += 1;
                    let fi = round * 10 + r.checkpoint.file_index;
                    r.checkpoint = Checkpoint::new(fi, r.checkpoint.offset);
                    r.safe_checkpoint = Checkpoint::new(fi, r.safe_checkpoint.offset);
                    r
                })
                .collect();
            let last = recs.last().unwrap().checkpoint;
            let pos = SourcePosition {
                file_name: format!("mariadb-bin.{:06}", last.file_index),
                file_index: last.file_index,
                offset: last.offset,
                stored_through: last,
            };
            self.store.append(&recs, Some(&pos)).unwrap();
            left -= take;
        }
    }

    /// Every stored record, as the endpoint must serve it.
    pub fn stored(&self) -> BTreeMap<u64, Stored> {
        self.store
            .iter(ReadFrom::Earliest)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (
                    r.seq,
                    Stored {
                        seq: r.seq,
                        timestamp: r.timestamp,
                        avro: avro::to_avro(&r),
                    },
                )
            })
            .collect()
    }
}

/// A store of `rounds` copies of the corpus (see [`Writer`]); the writer is closed.
pub fn build_store(path: &Path, rounds: u32, base_time: u32) -> Vec<Stored> {
    let mut w = Writer::create(path, base_time);
    for _ in 0..rounds {
        w.append_round();
    }
    w.stored().into_values().collect()
}

/// Creates a group; returns its id.
pub fn create_group(store: &Path, name: &str, user: &str) -> String {
    changetrack::Groups::open(store)
        .unwrap()
        .create(name, user, PW)
        .unwrap()
}

pub fn follower(path: &Path) -> Store {
    Store::open(
        path,
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// The endpoint on a free loopback port, in this process.
pub fn serve(path: &Path, tweak: impl FnOnce(&mut ServerOptions)) -> ServerHandle {
    let mut opts = ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        topic: TOPIC.to_owned(),
        member_session_timeout: (Duration::from_millis(500), Duration::from_secs(600)),
        ..ServerOptions::default()
    };
    tweak(&mut opts);
    Server::bind(follower(path), opts).unwrap().spawn().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Drivers

/// A client driver of `tests/clients/` (see its README for the contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Confluent,
    KafkaPython2,
    KafkaPython3,
    JavaClients,
    Dts,
    Sarama,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Self::Confluent => "confluent-kafka",
            Self::KafkaPython2 => "kafka-python 2.0.2",
            Self::KafkaPython3 => "kafka-python 3",
            Self::JavaClients => "Java kafka-clients 2.7.0",
            Self::Dts => "DTS consumer SDK",
            Self::Sarama => "sarama",
        }
    }

    fn command(self) -> (PathBuf, Option<&'static str>) {
        let c = root().join("tests/clients");
        match self {
            Self::Confluent => (c.join("python/run.sh"), Some("confluent")),
            Self::KafkaPython2 => (c.join("python/run.sh"), Some("kafka-python-2.0.2")),
            Self::KafkaPython3 => (c.join("python/run.sh"), Some("kafka-python-3")),
            Self::JavaClients => (c.join("java/run.sh"), Some("kafka-clients")),
            Self::Dts => (c.join("java/run.sh"), Some("dts")),
            Self::Sarama => (c.join("go/run.sh"), None),
        }
    }

    /// Whether the driver is set up; otherwise why not. Under CI (`CHANGETRACK_REQUIRE_CLIENTS`)
    /// a missing driver fails the test instead.
    pub fn check(self) -> bool {
        let (run, first) = self.command();
        let mut c = Command::new(&run);
        if let Some(f) = first {
            c.arg(f);
        }
        // Without arguments a driver fails with a usage error; 127 means "not set up".
        let out = c.output();
        let missing = match &out {
            Err(e) => Some(format!("{} cannot run: {e}", run.display())),
            Ok(o) if o.status.code() == Some(127) => Some(format!(
                "{}: {}",
                self.name(),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => None,
        };
        match missing {
            None => true,
            Some(why) => {
                if std::env::var_os("CHANGETRACK_REQUIRE_CLIENTS").is_some() {
                    panic!("a required Kafka client is not set up: {why}");
                }
                eprintln!("SKIPPED: {} ({why})", self.name());
                false
            }
        }
    }
}

/// A consume run (see the contract).
#[derive(Clone, Debug)]
pub struct Consume {
    pub bootstrap: String,
    pub user: String,
    pub group: String,
    pub password: String,
    pub mode: &'static str,
    pub start: String,
    pub until_end: bool,
    pub max_records: Option<u64>,
    pub run_seconds: Option<u64>,
    pub commit: bool,
    pub client_id: Option<String>,
    pub session_timeout_ms: Option<u64>,
    pub group_id: Option<String>,
}

impl Consume {
    pub fn new(bootstrap: impl Into<String>, user: &str, group: &str) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            user: user.to_owned(),
            group: group.to_owned(),
            password: PW.to_owned(),
            mode: "assign",
            start: "earliest".to_owned(),
            until_end: false,
            max_records: None,
            run_seconds: None,
            commit: false,
            client_id: None,
            session_timeout_ms: None,
            group_id: None,
        }
    }

    fn command(&self, client: Client) -> Command {
        let (run, first) = client.command();
        let mut c = Command::new(run);
        if let Some(f) = first {
            c.arg(f);
        }
        c.args(["consume", "--bootstrap", &self.bootstrap, "--topic", TOPIC])
            .args(["--user", &self.user, "--group", &self.group])
            .args(["--mode", self.mode, "--start", &self.start])
            .env("CT_KAFKA_PASSWORD", &self.password);
        if self.until_end {
            c.arg("--until-end");
        }
        if let Some(n) = self.max_records {
            c.args(["--max-records", &n.to_string()]);
        }
        if let Some(s) = self.run_seconds {
            c.args(["--run-seconds", &s.to_string()]);
        }
        if self.commit {
            c.arg("--commit");
        }
        if let Some(id) = &self.client_id {
            c.args(["--client-id", id]);
        }
        if let Some(t) = self.session_timeout_ms {
            c.args(["--session-timeout-ms", &t.to_string()]);
        }
        if let Some(g) = &self.group_id {
            c.args(["--group-id", g]);
        }
        c
    }

    /// Runs to the end.
    pub fn run(&self, client: Client) -> Outcome {
        let out = self
            .command(client)
            .stdin(Stdio::null())
            .output()
            .expect("driver runs");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            events: parse_events(&String::from_utf8_lossy(&out.stdout)),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts it; its events are collected as they come.
    pub fn spawn(&self, client: Client) -> Running {
        let mut child = self
            .command(client)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("driver starts");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let ev = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        let se = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = se.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running {
            child,
            events,
            stderr,
        }
    }
}

fn parse_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A received record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub offset: u64,
    pub timestamp_ms: Option<i64>,
    pub value: Vec<u8>,
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 value")
}

fn records_of(events: &[serde_json::Value]) -> Vec<Got> {
    events
        .iter()
        .filter(|e| e["event"] == "record")
        .map(|e| Got {
            offset: e["offset"].as_u64().expect("offset"),
            timestamp_ms: e["timestamp_ms"].as_i64(),
            value: e["value"].as_str().map(b64).unwrap_or_default(),
        })
        .collect()
}

/// A finished driver run.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
}

impl Outcome {
    pub fn records(&self) -> Vec<Got> {
        records_of(&self.events)
    }

    pub fn first(&self, kind: &str) -> Option<&serde_json::Value> {
        self.events.iter().find(|e| e["event"] == kind)
    }

    pub fn last(&self, kind: &str) -> Option<&serde_json::Value> {
        self.events.iter().rev().find(|e| e["event"] == kind)
    }

    /// Panics with the driver's output unless it exited with `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            code,
            "{what}: exit code {} (want {code}); events: {:?}\nstderr (tail): {}",
            self.code,
            self.events.iter().rev().take(5).collect::<Vec<_>>(),
            tail(&self.stderr, 3000)
        );
        self
    }
}

pub fn tail(s: &str, n: usize) -> &str {
    let mut at = s.len().saturating_sub(n);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// A running driver.
pub struct Running {
    pub child: Child,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn records(&self) -> Vec<Got> {
        records_of(&self.events())
    }

    /// Waits until an event satisfies `f` (panics after `within`).
    pub fn wait_for(
        &self,
        what: &str,
        within: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:?}\nstderr (tail): {}",
                self.events().iter().rev().take(8).collect::<Vec<_>>(),
                tail(&self.stderr(), 4000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The partitions of the latest `assigned` event.
    pub fn assigned(&self) -> Option<Vec<i64>> {
        self.events()
            .iter()
            .rev()
            .find(|e| e["event"] == "assigned")
            .map(|e| {
                e["partitions"]
                    .as_array()
                    .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
                    .unwrap_or_default()
            })
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit (panics after `within`).
    pub fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader threads drain.
                std::thread::sleep(Duration::from_millis(100));
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the driver did not exit; events: {:?}\nstderr (tail): {}",
                self.events().iter().rev().take(8).collect::<Vec<_>>(),
                tail(&self.stderr(), 4000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks that each received record is the stored one at its offset, byte for byte.
/// `reencoded`: the value was decoded by the client and encoded again with a schema without
/// `bornTimestamp` (the DTS SDK's): it must decode (with apache-avro) to the same record,
/// field by field, maps compared as maps (Java re-encodes them in hash order).
pub fn assert_values(got: &[Got], stored: &BTreeMap<u64, Stored>, reencoded: bool, who: &str) {
    for g in got {
        let s = stored
            .get(&g.offset)
            .unwrap_or_else(|| panic!("{who}: offset {} is not a stored seq", g.offset));
        if reencoded {
            assert_same_record(&g.value, &s.avro, who, g.offset);
        } else {
            assert_eq!(
                g.value, s.avro,
                "{who}: record {} differs from the stored Avro",
                g.offset
            );
        }
        if let Some(ts) = g.timestamp_ms {
            assert_eq!(
                ts,
                i64::from(s.timestamp) * 1000,
                "{who}: timestamp of {}",
                g.offset
            );
        }
    }
}

fn assert_same_record(theirs: &[u8], ours: &[u8], who: &str, offset: u64) {
    use apache_avro::types::Value as V;
    use changetrack::record::avro::decode_with_apache_avro;
    let mut t = theirs.to_vec();
    t.push(0); // bornTimestamp = 0, absent from the client's schema
    let fields = |v: V| match v {
        V::Record(f) => f
            .into_iter()
            .filter(|(k, _)| k != "bornTimestamp")
            .collect::<Vec<_>>(),
        other => panic!("not a record: {other:?}"),
    };
    let theirs = fields(
        decode_with_apache_avro(&t)
            .unwrap_or_else(|e| panic!("{who}: record {offset} does not decode: {e}")),
    );
    let ours = fields(decode_with_apache_avro(ours).unwrap());
    assert_eq!(theirs, ours, "{who}: record {offset} decodes differently");
}
