//! The Kafka endpoint against the clients users run: kcat, confluent-kafka, kafka-python 2.0.2
//! and 3.x, the Java kafka-clients 2.7.0, the DTS consumer SDK and sarama. For each: a seek by
//! time and every record after it, byte for byte the stored Avro; a commit and a restart that
//! resumes after it; a wrong password and another group's id; two members in subscribe mode,
//! one active and the standby taking over; the position `group list` shows after a Kafka
//! commit.
//!
//! The drivers (`tests/clients/`) are set up by `.ci/run`; a driver that is not set up is
//! reported as SKIPPED (and fails the test under `CHANGETRACK_REQUIRE_CLIENTS=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use changetrack::{Groups, ReadFrom};

#[path = "support/kafka.rs"]
mod kafka;
use kafka::*;

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");
const BASE_TIME: u32 = 1_700_000_000;

struct Setup {
    _dir: std::path::PathBuf,
    store: std::path::PathBuf,
    writer: std::sync::Mutex<Writer>,
    stored: BTreeMap<u64, Stored>,
    last: u64,
    alice: String,
    bob: String,
    server: changetrack_kafka::ServerHandle,
}

fn setup(name: &str) -> Setup {
    let dir = tmp(name);
    let store = dir.join("store");
    // 4 rounds of the corpus: 3360 records over 168 s, three full batch blocks and a tail.
    let mut writer = Writer::create(&store, BASE_TIME);
    for _ in 0..4 {
        writer.append_round();
    }
    let stored = writer.stored();
    let last = *stored.keys().last().unwrap();
    let alice = create_group(&store, "orders", "alice");
    let bob = create_group(&store, "billing", "bob");
    let server = serve(&store, |_| {});
    Setup {
        _dir: dir,
        store,
        writer: std::sync::Mutex::new(writer),
        stored,
        last,
        alice,
        bob,
        server,
    }
}

impl Setup {
    /// Appends another round of records (seen by the endpoint within milliseconds); returns
    /// every stored record.
    fn append(&self) -> BTreeMap<u64, Stored> {
        let mut w = self.writer.lock().unwrap();
        w.append_round();
        w.stored()
    }

    fn consume(&self) -> Consume {
        Consume::new(self.server.local_addr().to_string(), "alice", &self.alice)
    }

    /// The first stored seq at or after `secs` (what a seek by time must give).
    fn seq_at_time(&self, secs: u32) -> u64 {
        follower(&self.store)
            .resolve(ReadFrom::Timestamp(secs))
            .unwrap()
    }

    /// `group list --format jsonl` for the group.
    fn group_list(&self, id: &str) -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["group", "list", "--store"])
            .arg(&self.store)
            .args(["--format", "jsonl"])
            .output()
            .unwrap();
        assert!(out.status.success(), "group list: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("group {id} not listed"))
    }

    fn committed_seq(&self, id: &str) -> Option<u64> {
        Groups::open(&self.store)
            .unwrap()
            .committed(id)
            .unwrap()
            .map(|c| c.seq)
    }
}

fn offsets(got: &[Got]) -> Vec<u64> {
    got.iter().map(|g| g.offset).collect()
}

/// Every offset from `from` to `to`, once each, in order.
fn assert_dense(got: &[Got], from: u64, to: u64, who: &str) {
    let o = offsets(got);
    let want: Vec<u64> = (from..=to).collect();
    assert!(
        o == want,
        "{who}: got {} records {:?}..{:?}, want {from}..={to}",
        o.len(),
        o.first(),
        o.last()
    );
}

fn exercise(client: Client) {
    if !client.check() {
        return;
    }
    let who = client.name();
    let s = setup(&format!("{client:?}"));
    let dts = client == Client::Dts;

    // 1. Seek by time, then every record to the end, byte for byte the stored Avro. The DTS
    //    SDK passes seconds; the others are tried with milliseconds and with seconds.
    let secs = BASE_TIME + 57;
    let first = s.seq_at_time(secs);
    assert!(first > 1 && first < s.last);
    let units: &[&str] = if dts {
        &["time-s"]
    } else {
        &["time-ms", "time-s"]
    };
    for unit in units {
        let value = if *unit == "time-ms" {
            u64::from(secs) * 1000
        } else {
            u64::from(secs)
        };
        let mut c = s.consume();
        c.start = format!("{unit}:{value}");
        c.until_end = true;
        let o = c.run(client);
        o.expect_code(0, &format!("{who}: seek by {unit}"));
        if !dts {
            let seek = o.first("seek").expect("a seek event");
            assert_eq!(
                seek["offset"].as_u64(),
                Some(first),
                "{who}: seek by {unit}"
            );
        }
        let got = o.records();
        assert_dense(&got, first, s.last, &format!("{who} ({unit})"));
        assert_values(&got, &s.stored, dts, who);
    }

    // A time after the newest record starts at the end (no replay); one before the oldest is
    // an error, never a silent jump.
    if !dts {
        let mut c = s.consume();
        c.start = format!("time-ms:{}", u64::from(BASE_TIME + 100_000) * 1000);
        c.max_records = Some(1);
        c.run_seconds = Some(3);
        let o = c.run(client);
        assert!(o.records().is_empty(), "{who}: records after a future time");
        assert_eq!(
            o.first("seek").and_then(|e| e["offset"].as_u64()),
            Some(s.last + 1),
            "{who}: a future time seeks to the end; events {:?}",
            o.events
        );
    }

    // 2. Commit, then restart from the committed position: nothing lost.
    let mut c = s.consume();
    c.start = "earliest".into();
    c.max_records = Some(1500);
    c.commit = true;
    let o = c.run(client);
    o.expect_code(0, &format!("{who}: consume and commit"));
    let part1 = o.records();
    assert!(part1.len() >= 1500, "{who}: {} records", part1.len());
    let committed = o
        .last("committed")
        .and_then(|e| e["offset"].as_u64())
        .expect("a committed event");
    // Kafka commits name the next offset to read: the store's position is the one before.
    // (The DTS SDK commits a record's own offset, so its last record counts as unread: it
    // re-reads by time after a restart anyway.)
    let want_seq = committed - 1;
    assert_eq!(
        s.committed_seq(&s.alice),
        Some(want_seq),
        "{who}: stored position"
    );
    let listed = s.group_list(&s.alice);
    assert_eq!(
        listed["committed_seq"].as_u64(),
        Some(want_seq),
        "{who}: group list {listed}"
    );
    assert_eq!(
        listed["remaining"].as_u64(),
        Some(s.last - want_seq),
        "{who}: group list {listed}"
    );
    let mut c = s.consume();
    c.start = "committed".into();
    c.until_end = true;
    let o = c.run(client);
    o.expect_code(0, &format!("{who}: resume"));
    let part2 = o.records();
    let resumed_at = part2.first().expect("records after the commit").offset;
    if dts {
        // The SDK re-seeks by the committed record's time: it re-reads that second.
        assert!(resumed_at <= committed, "{who}: resumed at {resumed_at}");
    } else {
        assert_eq!(resumed_at, committed, "{who}: resumed at {resumed_at}");
        let fc = o.first("fetched_commit").expect("fetched_commit");
        assert_eq!(fc["offset"].as_u64(), Some(committed));
    }
    let all: BTreeSet<u64> = offsets(&part1).into_iter().chain(offsets(&part2)).collect();
    assert_eq!(
        all,
        (1..=s.last).collect::<BTreeSet<u64>>(),
        "{who}: a record was lost across the restart"
    );
    assert_values(&part2, &s.stored, dts, who);

    // 3. A wrong password, and another group's id.
    let mut c = s.consume();
    c.password = "Wrong_pass1".into();
    c.until_end = true;
    let t = Instant::now();
    c.run(client)
        .expect_code(3, &format!("{who}: wrong password"));
    assert!(t.elapsed() < Duration::from_secs(40));
    if dts {
        // The SDK derives the user name and the group from one id: bob's group with alice's
        // user is a wrong credential.
        let mut c = s.consume();
        c.group = s.bob.clone();
        c.until_end = true;
        c.run(client)
            .expect_code(3, &format!("{who}: another group"));
    } else {
        // Fetch carries no group: the group id is checked where it is used (the coordinator,
        // commits, committed offsets).
        let mut c = s.consume();
        c.group_id = Some(s.bob.clone());
        c.start = "committed".into();
        c.until_end = true;
        c.run(client)
            .expect_code(4, &format!("{who}: another group's id"));
    }

    // 4. Two members in subscribe mode: the first is active, the second a standby that takes
    //    over when the first dies.
    subscribe_standby(&s, client, &s.bob, "bob");
    drop(s);
}

fn subscribe_standby(s: &Setup, client: Client, group: &str, user: &str) {
    let who = client.name();
    let mut c = Consume::new(s.server.local_addr().to_string(), user, group);
    c.mode = "subscribe";
    c.start = "committed".into();
    c.run_seconds = Some(90);
    c.session_timeout_ms = Some(6000);
    let mut a = c.clone();
    a.client_id = Some("member-a".into());
    let mut a = a.spawn(client);
    a.wait_for("A assigned [0]", Duration::from_secs(40), |e| {
        e["event"] == "assigned" && e["partitions"] == serde_json::json!([0])
    });
    a.wait_for("A reads", Duration::from_secs(30), |e| {
        e["event"] == "record"
    });
    let mut b = c.clone();
    b.client_id = Some("member-b".into());
    b.until_end = true;
    let mut b = b.spawn(client);
    b.wait_for("B assigned []", Duration::from_secs(40), |e| {
        e["event"] == "assigned" && e["partitions"] == serde_json::json!([])
    });
    // A keeps the partition across the rebalance; B receives nothing while A lives.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.assigned(), Some(vec![0]), "{who}: A lost the partition");
    assert!(
        b.records().is_empty(),
        "{who}: the standby received records"
    );
    a.kill();
    // New records arrive while the standby takes over; it reads from the group's committed
    // position (nothing was committed: the beginning) to the new end.
    let stored = s.append();
    let last = *stored.keys().last().unwrap();
    let code = b.wait_exit(Duration::from_secs(90));
    assert_eq!(
        code,
        0,
        "{who}: the standby did not finish; events {:?}\n{}",
        b.events().iter().rev().take(5).collect::<Vec<_>>(),
        tail(&b.stderr(), 3000)
    );
    assert_eq!(
        b.assigned(),
        Some(vec![0]),
        "{who}: B never got partition 0"
    );
    let got = b.records();
    let from = s.committed_seq(group).unwrap_or(0);
    assert_eq!(from, 0, "{who}: nothing was committed in this group");
    assert_dense(&got, 1, last, &format!("{who}: the standby"));
    assert_values(&got, &stored, client == Client::Dts, who);
}

#[test]
fn confluent_kafka() {
    exercise(Client::Confluent);
}

#[test]
fn kafka_python_2_0_2() {
    exercise(Client::KafkaPython2);
}

#[test]
fn kafka_python_3() {
    exercise(Client::KafkaPython3);
}

#[test]
fn java_kafka_clients_2_7() {
    exercise(Client::JavaClients);
}

#[test]
fn dts_consumer_sdk() {
    exercise(Client::Dts);
}

#[test]
fn sarama_v0_11() {
    exercise(Client::Sarama);
}

// ---------------------------------------------------------------------------------------------
// kcat (librdkafka 2.0.2, Debian): its own command line.

fn kcat_available() -> bool {
    let ok = Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CHANGETRACK_REQUIRE_CLIENTS").is_some() {
            panic!("kcat is not installed");
        }
        eprintln!("SKIPPED: kcat (not installed)");
    }
    ok
}

fn kcat(s: &Setup, user: &str, group: &str, password: &str, args: &[&str]) -> std::process::Output {
    kcat_at(s.server.local_addr(), user, group, password, args)
}

fn kcat_at(
    addr: std::net::SocketAddr,
    user: &str,
    group: &str,
    password: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new("kcat")
        .args(["-b", &addr.to_string()])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ])
        .arg("-X")
        .arg(format!("sasl.username={user}-{group}"))
        .arg("-X")
        .arg(format!("sasl.password={password}"))
        .args(["-X", "check.crcs=true"])
        .args(args)
        .output()
        .unwrap()
}

/// kcat's `-f '%o %T %S\n%s\n'` output: offset, timestamp, value.
fn parse_kcat(out: &[u8]) -> Vec<Got> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let nl = i + out[i..].iter().position(|&b| b == b'\n').unwrap();
        let head = std::str::from_utf8(&out[i..nl]).unwrap();
        let mut p = head.split(' ');
        let offset: u64 = p.next().unwrap().parse().unwrap();
        let ts: i64 = p.next().unwrap().parse().unwrap();
        let n: usize = p.next().unwrap().parse().unwrap();
        v.push(Got {
            offset,
            timestamp_ms: Some(ts),
            value: out[nl + 1..nl + 1 + n].to_vec(),
        });
        i = nl + 1 + n + 1;
    }
    v
}

const KCAT_FMT: &str = "%o %T %S\n%s\n";

/// kcat's arguments that read partition 0 from `offset` to its end.
fn partition_to_end(offset: &str) -> [&str; 10] {
    [
        "-C", "-t", TOPIC, "-p", "0", "-e", "-f", KCAT_FMT, "-o", offset,
    ]
}

#[test]
fn kcat_librdkafka_2_0_2() {
    if !kcat_available() {
        return;
    }
    let s = setup("kcat");
    let g = s.alice.clone();
    // 1. Seek by time (milliseconds, as librdkafka users pass) and read to the end.
    let secs = BASE_TIME + 57;
    let first = s.seq_at_time(secs);
    let o = kcat(
        &s,
        "alice",
        &g,
        PW,
        &partition_to_end(&format!("s@{}", u64::from(secs) * 1000)),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = parse_kcat(&o.stdout);
    assert_dense(&got, first, s.last, "kcat");
    assert_values(&got, &s.stored, false, "kcat");
    // From the beginning, and a future time (the end: nothing).
    let o = kcat(&s, "alice", &g, PW, &partition_to_end("beginning"));
    assert_dense(&parse_kcat(&o.stdout), 1, s.last, "kcat from the beginning");
    let o = kcat(&s, "alice", &g, PW, &partition_to_end("s@1900000000000"));
    assert!(o.status.success() && o.stdout.is_empty());
    // A time before the oldest record, in a store that never trimmed: the first record.
    let o = kcat(&s, "alice", &g, PW, &partition_to_end("s@1600000000000"));
    assert_dense(
        &parse_kcat(&o.stdout),
        1,
        s.last,
        "kcat from a time before the data",
    );

    // 2. The balanced consumer commits on exit (-c: stop after N); a restart resumes there.
    let o = kcat(
        &s,
        "alice",
        &g,
        PW,
        &[
            "-G",
            &g,
            TOPIC,
            "-X",
            "auto.offset.reset=earliest",
            "-c",
            "1000",
            "-f",
            KCAT_FMT,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let part1 = parse_kcat(&o.stdout);
    assert_dense(&part1, 1, 1000, "kcat -G part 1");
    assert_eq!(s.committed_seq(&g), Some(1000));
    let listed = s.group_list(&g);
    assert_eq!(listed["committed_seq"].as_u64(), Some(1000), "{listed}");
    assert_eq!(
        listed["remaining"].as_u64(),
        Some(s.last - 1000),
        "{listed}"
    );
    let o = kcat(
        &s,
        "alice",
        &g,
        PW,
        &["-G", &g, TOPIC, "-e", "-f", KCAT_FMT],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let part2 = parse_kcat(&o.stdout);
    assert_dense(&part2, 1001, s.last, "kcat -G part 2");
    assert_values(&part2, &s.stored, false, "kcat");

    // 3. A wrong password; another group's id.
    let o = kcat(
        &s,
        "alice",
        &g,
        "Wrong_pass1",
        &["-C", "-t", TOPIC, "-p", "0", "-e", "-o", "beginning"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Authentication failed"));
    let o = kcat(&s, "alice", &g, PW, &["-G", &s.bob, TOPIC, "-e"]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .to_lowercase()
            .contains("authoriz"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty());

    // 4. Two balanced consumers: one active, one standby taking over when the first dies.
    let spawn = |extra: &[&str]| {
        Command::new("kcat")
            .args(["-b", &s.server.local_addr().to_string()])
            .args([
                "-X",
                "security.protocol=SASL_PLAINTEXT",
                "-X",
                "sasl.mechanisms=PLAIN",
            ])
            .arg("-X")
            .arg(format!("sasl.username=bob-{}", s.bob))
            .arg("-X")
            .arg(format!("sasl.password={PW}"))
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "auto.offset.reset=earliest",
            ])
            .args([
                "-u",
                "-X",
                "enable.auto.commit=false",
                "-G",
                &s.bob,
                TOPIC,
                "-f",
                "%o\n",
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut a = spawn(&[]);
    let a_out = lines_of(a.stdout.take().unwrap());
    let a_err = lines_of(a.stderr.take().unwrap());
    wait_line(&a_err, "assigned: cdc [0]", Duration::from_secs(30));
    wait_until(
        || a_out.lock().unwrap().len() as u64 >= s.last,
        Duration::from_secs(30),
        || {
            format!(
                "A read {} records; stderr {:?}",
                a_out.lock().unwrap().len(),
                a_err.lock().unwrap()
            )
        },
    );
    let mut b = spawn(&["-e"]);
    let b_out = lines_of(b.stdout.take().unwrap());
    let b_err = lines_of(b.stderr.take().unwrap());
    wait_line(&b_err, "assigned:", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        b_out.lock().unwrap().is_empty(),
        "the standby received records"
    );
    assert!(!b_err
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("assigned: cdc [0]")));
    let _ = a.kill();
    let _ = a.wait();
    // kcat commits what it read even with enable.auto.commit=false (its legacy topic-level
    // auto.commit.enable): the standby goes on from A's committed position.
    let from = s.committed_seq(&s.bob).unwrap_or(0);
    let stored = s.append();
    let last = *stored.keys().last().unwrap();
    wait_line(&b_err, "assigned: cdc [0]", Duration::from_secs(60));
    let st = b.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(st.success());
    let got: Vec<u64> = b_out
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(
        got,
        (from + 1..=last).collect::<Vec<_>>(),
        "the standby's records"
    );
    assert!(from < last);
}

type Lines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn lines_of(r: impl std::io::Read + Send + 'static) -> Lines {
    use std::io::BufRead;
    let v: Lines = Default::default();
    let v2 = std::sync::Arc::clone(&v);
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            v2.lock().unwrap().push(l);
        }
    });
    v
}

fn wait_until(f: impl Fn() -> bool, within: Duration, why: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {}", why());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_line(lines: &Lines, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?}: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The batches of a batch log segment, in file order: (base offset, position, length).
fn log_batches(path: &std::path::Path) -> Vec<(i64, usize, usize)> {
    let b = std::fs::read(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 12 <= b.len() {
        let base = i64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        let len =
            usize::try_from(i32::from_be_bytes(b[i + 8..i + 12].try_into().unwrap())).unwrap() + 12;
        if i + len > b.len() {
            break;
        }
        out.push((base, i, len));
        i += len;
    }
    out
}

fn wait_for_batches(seg: &std::path::Path, want: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bases: Vec<i64> = log_batches(seg).iter().map(|b| b.0).collect();
        if bases == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the batch log holds {bases:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `serve --batch-log`: the full blocks are kept on disk and served from there (kcat checks
/// every CRC, and every value is the stored record's Avro); a batch damaged on disk is never
/// served: it is encoded again from the store, and the log heals; a torn tail is cut.
#[test]
fn kcat_reads_history_from_the_batch_log_and_never_a_damaged_batch() {
    if !kcat_available() {
        return;
    }
    let s = setup("kcat-log");
    let g = s.alice.clone();
    let log = s._dir.join("batch-log");
    let seg = log.join("00000000000000000000.batches");
    let from_beginning = partition_to_end("beginning");
    let with_log = |o: &mut changetrack_kafka::ServerOptions| o.batch_log = Some(log.clone());

    // 3360 records: blocks 1-1024, 1025-2048 and 2049-3072 are full, the rest is the tail.
    let server = serve(&s.store, with_log);
    wait_for_batches(&seg, &[1, 1025, 2049]);
    let o = kcat_at(server.local_addr(), "alice", &g, PW, &from_beginning);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = parse_kcat(&o.stdout);
    assert_dense(&got, 1, s.last, "kcat through the batch log");
    assert_values(&got, &s.stored, false, "kcat through the batch log");
    assert!(
        server.metrics().batch_log_hits.get() >= 3,
        "the full blocks were not served from the log"
    );
    assert_eq!(server.metrics().batch_log_damaged.get(), 0);
    drop(server);

    // A byte flipped inside the second block's records, and a torn write at the end.
    let batches = log_batches(&seg);
    let (_, pos, _) = batches[1];
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[pos + 300] ^= 0x20;
    let torn = bytes[..100].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&seg, &bytes).unwrap();

    let server = serve(&s.store, with_log);
    let o = kcat_at(server.local_addr(), "alice", &g, PW, &from_beginning);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = parse_kcat(&o.stdout);
    assert_dense(&got, 1, s.last, "kcat after damage to the log");
    assert_values(&got, &s.stored, false, "kcat after damage to the log");
    assert_eq!(server.metrics().batch_log_damaged.get(), 1);
    assert!(server.metrics().batch_log_hits.get() >= 2);
    // The torn tail was cut and the damaged block written again after the good ones.
    wait_for_batches(&seg, &[1, 1025, 2049, 1025]);
    drop(server);
}
