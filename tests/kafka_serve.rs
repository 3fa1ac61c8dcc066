//! `changetrack serve` as users run it, next to `ingest`: `kill -9` while clients consume and
//! commit (every answered commit survives, clients reconnect and go on), a clean stop on
//! SIGTERM, a live ingestion with retention trimming while a Kafka client reads (only whole,
//! committed transactions, byte for byte what was stored), and the DTS SDK through an idle
//! period.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use changetrack::record::avro;
use changetrack::{ConsumerOptions, Groups, ReadFrom, StartAt};

#[path = "support/kafka.rs"]
mod kafka;
use kafka::*;
#[path = "support/raw_kafka.rs"]
mod raw_kafka;
use raw_kafka::*;
#[path = "support/mariadb.rs"]
mod mariadb;

#[path = "support/proc.rs"]
mod proc;
use mariadb::MariaDb;
use proc::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_changetrack");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `changetrack serve` on 127.0.0.1:`port`, ready when it returns.
fn start_serve(store: &Path, port: u16) -> Proc {
    let child = Command::new(BIN)
        .args(["serve", "--store"])
        .arg(store)
        .args([
            "--kafka-listen",
            &format!("127.0.0.1:{port}"),
            "--topic",
            TOPIC,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

fn kill9(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &c.id().to_string()])
        .status();
    let _ = c.wait();
}

#[test]
fn kill_9_of_serve_keeps_every_answered_commit_and_clients_go_on() {
    let dir = tmp("kill9");
    let store = dir.join("store");
    let mut w = Writer::create(&store, 1_700_000_000);
    w.append_round();
    let group = create_group(&store, "g", "alice");
    let other = create_group(&store, "raw", "bob");
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut serve = start_serve(&store, port);
    // The Java client reads and commits after every poll (commitSync: a `committed` event is an
    // answered commit) through every crash; it reconnects by itself.
    let java = Client::JavaClients.check();
    let mut reader = java.then(|| {
        let mut c = Consume::new(addr.to_string(), "alice", &group);
        c.start = "earliest".into();
        c.commit = true;
        c.run_seconds = Some(240);
        c.spawn(Client::JavaClients)
    });
    if let Some(r) = &reader {
        r.wait_for("the client's first commit", Duration::from_secs(60), |e| {
            e["event"] == "committed"
        });
    }
    let answered = |r: &Running| {
        r.events()
            .iter()
            .filter(|e| e["event"] == "committed")
            .filter_map(|e| e["offset"].as_u64())
            .max()
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..20u32 {
        // More records arrive between crashes.
        w.append(60);
        // A raw commit in another group, answered right before the crash.
        let mut c = Raw::connect(addr);
        assert_eq!(c.login("bob", &other, PW), 0);
        let offset = 1 + i64::from(i) * 40;
        assert_eq!(commit(&mut c, &other, TOPIC, offset, &format!("m{i}")), 0);
        // The crash comes at a random moment of the client's work.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 400));
        let before = reader.as_ref().and_then(answered);
        kill9(&mut serve);
        let (got, meta) = Groups::open(&store)
            .unwrap()
            .committed_with_metadata(&other)
            .unwrap()
            .expect("the answered commit is on disk");
        assert_eq!(
            got.seq,
            offset as u64 - 1,
            "crash {i}: the answered commit was lost"
        );
        assert_eq!(meta, format!("m{i}").into_bytes());
        if let Some(before) = before {
            let stored = Groups::open(&store).unwrap().committed(&group).unwrap();
            assert!(
                stored.is_some_and(|c| c.seq + 1 >= before),
                "crash {i}: the client's answered commit of {before} was lost ({stored:?})"
            );
        }
        std::thread::sleep(Duration::from_millis(seed % 300));
        serve = start_serve(&store, port);
    }
    // The client reconnected after every crash and went on to the end.
    if let Some(r) = reader.as_mut() {
        let last = w.store.last_seq();
        r.wait_for(
            "the client reaches the end",
            Duration::from_secs(120),
            |e| e["event"] == "record" && e["offset"].as_u64() == Some(last),
        );
        let set: std::collections::BTreeSet<u64> = r.records().iter().map(|g| g.offset).collect();
        assert_eq!(
            set,
            (1..=last).collect(),
            "records missed across the crashes"
        );
        r.wait_for("its commit of the end", Duration::from_secs(60), |e| {
            e["event"] == "committed" && e["offset"].as_u64() == Some(last + 1)
        });
        assert_eq!(
            Groups::open(&store)
                .unwrap()
                .committed(&group)
                .unwrap()
                .map(|c| c.seq),
            Some(last)
        );
        r.kill();
    }
    kill9(&mut serve);
}

#[test]
fn serve_stops_cleanly_on_sigterm_and_releases_its_groups() {
    let dir = tmp("sigterm");
    let store = dir.join("store");
    build_store(&store, 1, 1_700_000_000);
    let group = create_group(&store, "g", "alice");
    let port = free_port();
    let mut serve = start_serve(&store, port);
    // A Kafka client takes the group's lease by committing.
    let mut c = Raw::connect(format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(c.login("alice", &group, PW), 0);
    assert_eq!(commit(&mut c, &group, TOPIC, 10, "x"), 0);
    // A library consumer of the group is a standby meanwhile.
    let st = follower(&store);
    let busy = changetrack::Consumer::open(
        &st,
        &group,
        "alice",
        PW,
        &ConsumerOptions {
            wait: false,
            ..ConsumerOptions::default()
        },
    );
    assert_eq!(busy.unwrap_err().kind(), changetrack::ErrorKind::Busy);
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        t.elapsed()
    );
    assert!(c.closed());
    // The lease is free at once, and the commit is there.
    let mut consumer = changetrack::Consumer::open(
        &st,
        &group,
        "alice",
        PW,
        &ConsumerOptions {
            wait: false,
            start: StartAt::Committed,
            ..ConsumerOptions::default()
        },
    )
    .unwrap();
    assert_eq!(consumer.next().unwrap().seq, 10);
}

#[test]
fn serve_next_to_a_live_ingest_with_retention_serves_whole_committed_transactions() {
    live_ingest_with_retention(
        "serve_next_to_a_live_ingest_with_retention_serves_whole_committed_transactions",
        false,
    );
}

/// The same with the batch log (`serve --batch-log`): full blocks are written to the log as the
/// ingest commits them, retention removes them from the store under it, and a second client
/// that reads everything left after the workload gets the batches from the log, byte for byte
/// what was stored.
#[test]
fn serve_with_a_batch_log_next_to_a_live_ingest_with_retention() {
    live_ingest_with_retention(
        "serve_with_a_batch_log_next_to_a_live_ingest_with_retention",
        true,
    );
}

fn live_ingest_with_retention(name: &str, batch_log: bool) {
    if !MariaDb::required(name) {
        return;
    }
    let m = MariaDb::start(
        if batch_log {
            "kafka-live-log"
        } else {
            "kafka-live"
        },
        &[],
    );
    m.sql("CREATE USER repl@'%' IDENTIFIED BY 'replpw'; GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO repl@'%'; CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB;");
    let dir = tmp(if batch_log { "live-log" } else { "live" });
    let store = dir.join("store");
    // Retention keeps about 300 kB: the oldest records are trimmed while the client reads.
    let mut ingest = Command::new(BIN)
        .args(["ingest", "--store"])
        .arg(&store)
        .args(["--source", &m.url("repl", "replpw"), "--start", "earliest"])
        .args(["--retain-bytes", "300000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.join("CURRENT").exists() || Groups::open(&store).is_err() {
        assert!(Instant::now() < deadline, "ingest did not create the store");
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = create_group(&store, "g", "alice");
    let log_dir = dir.join("batch-log");
    let server = serve(&store, |o| {
        if batch_log {
            o.batch_log = Some(log_dir.clone());
        }
    });
    // A reader that copies every record as it is stored, before retention can trim it.
    let snapshot = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<u64, Vec<u8>>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let copier = {
        let (snapshot, stop, store) = (snapshot.clone(), stop.clone(), store.clone());
        std::thread::spawn(move || {
            let st = follower(&store);
            let mut next = 1u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = st.refresh();
                if let Ok(it) = st.iter(ReadFrom::Seq(next)) {
                    for r in it.flatten() {
                        next = r.seq + 1;
                        snapshot.lock().unwrap().insert(r.seq, avro::to_avro(&r));
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // The Java client reads from the beginning while the workload runs.
    let mut c = Consume::new(server.local_addr().to_string(), "alice", &group);
    c.start = "earliest".into();
    c.run_seconds = Some(60);
    let client = if Client::JavaClients.check() {
        Some(c.spawn(Client::JavaClients))
    } else {
        None
    };
    // The workload: 300 transactions of 1 to 40 rows.
    let mut id = 0u64;
    for t in 0..300 {
        let n = 1 + (t * 7) % 40;
        let mut sql = String::from("BEGIN;");
        for _ in 0..n {
            id += 1;
            sql.push_str(&format!(
                "INSERT INTO shop.orders VALUES ({id}, 'transaction {t} row of {n}');"
            ));
        }
        sql.push_str("COMMIT;");
        m.sql(&sql);
    }
    // Wait until everything is stored and served.
    let st = follower(&store);
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows_stored = |st: &changetrack::Store| {
        let _ = st.refresh();
        st.data_range().ok().flatten().map_or(0, |r| r.newest.seq)
    };
    let mut last;
    loop {
        last = rows_stored(&st);
        // Every row and both markers of every transaction (and a few DDL records before).
        if last >= id + 600 && snapshot.lock().unwrap().contains_key(&last) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not catch up: last {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let oldest = st.oldest_seq().unwrap().unwrap();
    assert!(oldest > 1, "retention trimmed nothing");
    let Some(mut client) = client else {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = copier.join();
        let _ = ingest.kill();
        let _ = ingest.wait();
        return;
    };
    client.wait_for("the client reaches the end", Duration::from_secs(60), |e| {
        e["event"] == "record" && e["offset"].as_u64() == Some(last)
    });
    client.kill();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    copier.join().unwrap();
    let _ = ingest.kill();
    let _ = ingest.wait();
    let snapshot = snapshot.lock().unwrap();
    if batch_log {
        // Everything the store still holds, read again by a second client: the full blocks
        // come from the log (the filler wrote them as the ingest committed them).
        let _ = st.refresh();
        let oldest = st.oldest_seq().unwrap().unwrap();
        let mut again = Consume::new(server.local_addr().to_string(), "alice", &group);
        again.start = "earliest".into();
        again.run_seconds = Some(60);
        let mut again = again.spawn(Client::JavaClients);
        again.wait_for(
            "the second client reaches the end",
            Duration::from_secs(60),
            |e| e["event"] == "record" && e["offset"].as_u64() == Some(last),
        );
        again.kill();
        let got = again.records();
        // From the log start `serve` answers: its view of the store may lag retention's last
        // trim by a moment (records it still reads are served, and are what was stored), never
        // start after the store's oldest record.
        let first = got.first().map_or(0, |g| g.offset);
        assert!(
            (1..=oldest).contains(&first),
            "the second client started at {first}, the store's oldest record is {oldest}"
        );
        assert_eq!(got.len() as u64, last - first + 1, "every record once");
        for g in &got {
            assert_eq!(
                Some(&g.value),
                snapshot.get(&g.offset),
                "record {} read again differs from what was stored",
                g.offset
            );
        }
        let hits = server.metrics().batch_log_hits.get();
        eprintln!("records {first}..={last}, {hits} batches served from the log");
        assert!(hits >= 1, "{hits} batches served from the log");
        assert_eq!(server.metrics().batch_log_damaged.get(), 0);
    }
    let got = client.records();
    // Byte for byte what was stored, each offset once, in order (a reset to the log start
    // after retention overtook the client would show as a jump, never as a repeat).
    let mut prev = 0;
    for g in &got {
        assert!(g.offset > prev, "offset {} after {prev}", g.offset);
        prev = g.offset;
        assert_eq!(
            Some(&g.value),
            snapshot.get(&g.offset),
            "record {} differs from what was stored",
            g.offset
        );
    }
    // Whole transactions: from the first BEGIN received, every BEGIN is followed by its rows and
    // its COMMIT before the next BEGIN (decoded with apache-avro).
    let ops: Vec<String> = got
        .iter()
        .map(|g| {
            let v = avro::decode_with_apache_avro(&g.value).unwrap();
            let apache_avro::types::Value::Record(f) = v else {
                panic!("not a record")
            };
            match &f.iter().find(|(k, _)| k == "operation").unwrap().1 {
                apache_avro::types::Value::Enum(_, s) => s.clone(),
                other => panic!("operation {other:?}"),
            }
        })
        .collect();
    let start = ops.iter().position(|o| o == "BEGIN").expect("a BEGIN");
    let mut open = false;
    let mut txns = 0;
    for (i, o) in ops[start..].iter().enumerate() {
        match o.as_str() {
            "BEGIN" => {
                assert!(
                    !open,
                    "BEGIN inside a transaction at {}",
                    got[start + i].offset
                );
                open = true;
            }
            "COMMIT" => {
                assert!(open, "COMMIT outside a transaction");
                open = false;
                txns += 1;
            }
            "INSERT" => assert!(open, "a row outside a transaction"),
            _ => {}
        }
    }
    assert!(!open, "the last transaction was cut");
    assert!(txns >= 200, "{txns} transactions");
}

#[test]
fn the_dts_sdk_stays_connected_through_an_idle_period() {
    if !Client::Dts.check() {
        return;
    }
    // An idle store that receives a HEARTBEAT record every 5 s (ingest --follow).
    let dir = tmp("dts-idle");
    let binlogs = dir.join("binlogs");
    std::fs::create_dir_all(&binlogs).unwrap();
    for n in 1..=3 {
        let name = format!("mariadb-bin.00000{n}");
        std::fs::copy(
            root()
                .join("tests/data/binlogs/mariadb-10.11/row-metadata-full")
                .join(&name),
            binlogs.join(&name),
        )
        .unwrap();
    }
    let store = dir.join("store");
    let mut ingest = Command::new(BIN)
        .args(["ingest", "--follow", "--store"])
        .arg(&store)
        .arg(&binlogs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Groups::open(&store).is_err() || follower(&store).last_seq() < 840 {
        assert!(Instant::now() < deadline, "ingest did not store the corpus");
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = create_group(&store, "g", "alice");
    let server = serve(&store, |_| {});
    let first = follower(&store).get(1).unwrap().timestamp;
    let mut c = Consume::new(server.local_addr().to_string(), "alice", &group);
    c.start = format!("time-s:{first}");
    c.run_seconds = Some(75);
    let mut sdk = c.spawn(Client::Dts);
    sdk.wait_for("the stored records", Duration::from_secs(60), |e| {
        e["event"] == "record" && e["offset"].as_u64() == Some(840)
    });
    let connections = server.metrics().connections_total.get();
    // Idle: longer than the SDK's 64 empty polls at its 500 ms poll timeout (2.0.0); only
    // heartbeats arrive.
    std::thread::sleep(Duration::from_secs(45));
    let heartbeats = sdk
        .events()
        .iter()
        .filter(|e| e["event"] == "record" && e["operation"] == "HEARTBEAT")
        .count();
    assert!(heartbeats >= 6, "{heartbeats} heartbeats in 45 s");
    assert_eq!(
        server.metrics().connections_total.get(),
        connections,
        "the SDK reconnected during the idle period: {}",
        tail(&sdk.stderr(), 3000)
    );
    assert!(sdk.child.try_wait().unwrap().is_none(), "the SDK stopped");
    sdk.kill();
    let _ = ingest.kill();
    let _ = ingest.wait();
}
