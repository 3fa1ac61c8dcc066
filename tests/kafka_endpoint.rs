//! The Kafka endpoint at the wire, with hand-made requests: what is answered before
//! authentication, the legacy SASL flow, malformed and hostile requests (which close only their
//! own connection), ListOffsets at the edges of the data range, and the bound on password
//! hashing.

use std::io::Read;
use std::time::{Duration, Instant};

#[path = "support/kafka.rs"]
mod kafka;
use kafka::*;
#[path = "support/raw_kafka.rs"]
mod raw_kafka;
use raw_kafka::*;

#[test]
fn only_authentication_is_answered_before_authentication() {
    let f = fixture("preauth", |_| {});
    let addr = f.server.local_addr();
    // ApiVersions is answered, any number of times, before SASL.
    let mut c = Raw::connect(addr);
    for v in 0..=3 {
        let body = if v >= 3 { vec![0, 0, 0] } else { vec![] };
        let r = c.call(18, v, &body).expect("ApiVersions answered");
        assert_eq!(&r[..2], &[0, 0], "ApiVersions v{v} error code");
    }
    // A version above the advertised one: UNSUPPORTED_VERSION with the ranges (v0 body).
    let r = c.call(18, 9, &[]).expect("answered");
    assert_eq!(i16::from_be_bytes([r[0], r[1]]), 35);
    // Metadata before authentication closes the connection.
    let fr = c.frame(3, 1, &metadata_v1(&[]));
    c.send(&fr);
    assert!(c.closed(), "Metadata before authentication was answered");
    // So does Fetch, and so does a frame larger than the small pre-authentication limit.
    let mut c = Raw::connect(addr);
    c.send(&(1_000_000i32).to_be_bytes());
    assert!(c.closed());
    let mut c = Raw::connect(addr);
    c.send(&(-5i32).to_be_bytes());
    assert!(c.closed());
    // A mechanism other than PLAIN: error 33, then closed.
    let mut c = Raw::connect(addr);
    let r = c.call(17, 1, &str16("SCRAM-SHA-256")).expect("answered");
    assert_eq!(i16::from_be_bytes([r[0], r[1]]), 33);
    assert!(c.closed());
    // A wrong password: SASL_AUTHENTICATION_FAILED, then closed; the right one works.
    let mut c = Raw::connect(addr);
    assert_eq!(c.login("alice", &f.group, "Wrong_pass1"), 58);
    assert!(c.closed());
    let mut c = Raw::connect(addr);
    assert_eq!(c.login("alice", &f.group, PW), 0);
    // v1: a null topic list means all topics.
    let r = c
        .call(3, 1, &(-1i32).to_be_bytes())
        .expect("Metadata after login");
    assert!(r.windows(3).any(|w| w == b"cdc"));
    // A second authentication on a connection is refused.
    let fr = c.frame(17, 1, &str16("PLAIN"));
    c.send(&fr);
    assert!(c.closed());
    // Silence before authentication: closed after auth_timeout.
}

#[test]
fn the_legacy_raw_sasl_flow_works() {
    let f = fixture("legacy", |_| {});
    let addr = f.server.local_addr();
    for (authzid, pw, ok) in [
        ("", PW, true),
        ("alice-G", PW, true),
        ("", "Wrong_pass1", false),
    ] {
        let mut c = Raw::connect(addr);
        let r = c
            .call(17, 0, &str16("PLAIN"))
            .expect("handshake v0 answered");
        assert_eq!(&r[..2], &[0, 0]);
        let authzid = authzid.replace('G', &f.group);
        let token = format!("{authzid}\0alice-{}\0{pw}", f.group);
        c.send(&bytes32(token.as_bytes()));
        if ok {
            // Success is a zero-length frame, then requests are served.
            let mut z = [9u8; 4];
            c.s.read_exact(&mut z).unwrap();
            assert_eq!(z, [0, 0, 0, 0]);
            assert!(c.call(3, 0, &metadata_v1(&[])).is_some());
        } else {
            assert!(
                c.closed(),
                "a wrong password in the raw flow was not closed"
            );
        }
    }
}

#[test]
fn produce_and_other_groups_are_refused() {
    let f = fixture("refused", |_| {});
    let addr = f.server.local_addr();
    let mut c = Raw::connect(addr);
    assert_eq!(c.login("alice", &f.group, PW), 0);
    // FindCoordinator for another group: GROUP_AUTHORIZATION_FAILED (30).
    let r = c.call(10, 0, &str16("ctg-aaaaaaaaaaaaaaaa")).unwrap();
    assert_eq!(i16::from_be_bytes([r[0], r[1]]), 30);
    let r = c.call(10, 0, &str16(&f.group)).unwrap();
    assert_eq!(i16::from_be_bytes([r[0], r[1]]), 0);
    // Another topic: UNKNOWN_TOPIC_OR_PARTITION (3) in Metadata.
    let r = c.call(3, 1, &metadata_v1(&["other"])).unwrap();
    assert!(r.windows(2).any(|w| w == [0, 3]));
    // Produce closes the connection.
    let mut b = (-1i16).to_be_bytes().to_vec(); // transactional id null
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&1000i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    let fr = c.frame(0, 3, &b);
    c.send(&fr);
    assert!(c.closed());
}

/// ListOffsets v1 for partition 0 at `ts`: (error, timestamp, offset).
fn list_offsets(c: &mut Raw, ts: i64) -> (i16, i64, i64) {
    let mut b = (-1i32).to_be_bytes().to_vec();
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&str16(TOPIC));
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    let r = c.call(2, 1, &b).unwrap();
    // [topic [partition error timestamp offset]]
    let at = 4 + 2 + TOPIC.len() + 4 + 4;
    (
        i16::from_be_bytes(r[at..at + 2].try_into().unwrap()),
        i64::from_be_bytes(r[at + 2..at + 10].try_into().unwrap()),
        i64::from_be_bytes(r[at + 10..at + 18].try_into().unwrap()),
    )
}

#[test]
fn list_offsets_reads_seconds_and_milliseconds_and_refuses_trimmed_times() {
    let f = fixture("list-offsets", |_| {});
    let addr = f.server.local_addr();
    let mut c = Raw::connect(addr);
    assert_eq!(c.login("alice", &f.group, PW), 0);
    let last = 1680i64;
    assert_eq!(list_offsets(&mut c, -1), (0, -1, last + 1));
    assert_eq!(list_offsets(&mut c, -2), (0, -1, 1));
    // 20 records per second from 1_700_000_000: second +10 starts at seq 201.
    assert_eq!(
        list_offsets(&mut c, 1_700_000_010),
        (0, 1_700_000_010_000, 201)
    );
    assert_eq!(
        list_offsets(&mut c, 1_700_000_010_000),
        (0, 1_700_000_010_000, 201)
    );
    assert_eq!(
        list_offsets(&mut c, 1_700_000_009_001),
        (0, 1_700_000_010_000, 201)
    );
    // After the newest record: the end, with the asked time (never "no offset": the DTS SDK
    // would replay everything).
    assert_eq!(
        list_offsets(&mut c, 1_800_000_000_000),
        (0, 1_800_000_000_000, last + 1)
    );
    // Before the oldest while nothing was ever trimmed: the first record.
    assert_eq!(
        list_offsets(&mut c, 1_600_000_000),
        (0, 1_700_000_000_000, 1)
    );
    drop(c);
    drop(f.server);
    // Trim: the oldest records are gone, and a time before the data range is an error.
    {
        let st = changetrack::Store::open(
            &f.store,
            changetrack::StoreOptions {
                retention: changetrack::Retention {
                    max_age: None,
                    max_bytes: Some(100_000),
                },
                ..changetrack::StoreOptions::default()
            },
        )
        .unwrap();
        assert!(st.trim().unwrap() > 0);
    }
    let server = serve(&f.store, |_| {});
    let mut c = Raw::connect(server.local_addr());
    assert_eq!(c.login("alice", &f.group, PW), 0);
    let (e, _, start) = list_offsets(&mut c, -2);
    assert_eq!(e, 0);
    assert!(start > 1);
    assert_eq!(
        list_offsets(&mut c, 1_600_000_000_000).0,
        1,
        "OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(
        list_offsets(&mut c, 1_700_000_000).0,
        1,
        "OFFSET_OUT_OF_RANGE"
    );
}

#[test]
fn password_hashing_is_bounded() {
    let f = fixture("hashing", |o| {
        o.auth_concurrency = 1;
        o.auth_timeout = std::time::Duration::from_secs(2);
    });
    let addr = f.server.local_addr();
    let group = f.group.clone();
    // 40 wrong passwords at once: one hash at a time, the rest wait and give up at the auth
    // timeout; nothing piles up beyond it.
    let t = Instant::now();
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let g = group.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(addr);
                c.login("alice", &g, "Wrong_pass1")
            })
        })
        .collect();
    for h in handles {
        assert_ne!(h.join().unwrap(), 0);
    }
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(f.server.metrics().auth_failures.get() >= 40);
    // The right password still works afterwards.
    let mut c = Raw::connect(addr);
    assert_eq!(c.login("alice", &f.group, PW), 0);
}

/// Fetch v4 of partition 0 from `offset`; sends it without waiting for the answer.
fn send_fetch(c: &mut Raw, offset: i64, max_wait_ms: i32) {
    let mut b = (-1i32).to_be_bytes().to_vec(); // replica id
    b.extend_from_slice(&max_wait_ms.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    b.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
    b.push(0); // isolation level
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&str16(TOPIC));
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&(1i32 << 20).to_be_bytes());
    let fr = c.frame(1, 4, &b);
    assert!(c.send(&fr));
}

/// The answer to [`send_fetch`]: (error, bytes of records).
fn fetched(c: &mut Raw) -> (i16, usize) {
    let r = c.recv().expect("a Fetch answer");
    // correlation id, throttle, [topic [partition error hw last_stable aborted records]]
    let at = 4 + 4 + 4 + 2 + TOPIC.len() + 4 + 4;
    let error = i16::from_be_bytes(r[at..at + 2].try_into().unwrap());
    let aborted = i32::from_be_bytes(r[at + 18..at + 22].try_into().unwrap());
    assert!(aborted <= 0, "no aborted transactions");
    let n = i32::from_be_bytes(r[at + 22..at + 26].try_into().unwrap());
    (error, usize::try_from(n).unwrap_or(0))
}

/// A consumer that closes its connection during a long poll at the end and reconnects at once
/// (a restart) gets records at once: the old connection's poll notices the close and gives
/// the group's lease up, and the new connection's Fetch takes it while it waits. (Before, the
/// new Fetch was refused the lease for as long as the old poll lasted, and answered empty.)
#[test]
fn a_restarted_consumer_is_not_kept_waiting_by_its_old_connection() {
    let f = fixture("restart", |_| {});
    let mut a = logged_in(&f);
    let (e, _, end) = list_offsets(&mut a, -1);
    assert_eq!(e, 0);
    let (e, _, start) = list_offsets(&mut a, -2);
    assert_eq!(e, 0);
    assert!(end > start, "the fixture has records");
    // A long poll at the end, holding the group's lease, then the client goes.
    send_fetch(&mut a, end, 25_000);
    std::thread::sleep(Duration::from_millis(300));
    drop(a);
    let mut b = logged_in(&f);
    // Shorter than the old poll: with the old poll in the way this answers empty.
    send_fetch(&mut b, start, 5_000);
    let (e, n) = fetched(&mut b);
    assert_eq!(e, 0);
    assert!(n > 0, "the restarted consumer got no records");
}
