//! A hostile client cannot grow the endpoint's memory: requests announcing 2 GiB arrays or
//! frames close their connection (alone in this binary, so that its memory is measured alone).

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/raw_kafka.rs"]
mod raw_kafka;
use kafka::PW;
use raw_kafka::*;

/// Bodies whose array counts claim far more elements than the frame holds.
fn hostile_bodies() -> Vec<(i16, i16, Vec<u8>)> {
    let huge = i32::MAX.to_be_bytes();
    let mut v = Vec::new();
    // Metadata v1: [topics]
    v.push((3, 1, huge.to_vec()));
    // Fetch v5: replica, max wait, min bytes, max bytes, isolation, [topics]
    let mut b = Vec::new();
    for x in [-1i32, 100, 1, 1 << 20] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    b.push(0);
    b.extend_from_slice(&huge);
    v.push((1, 5, b));
    // OffsetCommit v3: group, generation, member, retention, [topics]
    let mut b = str16("g");
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&str16(""));
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&huge);
    v.push((8, 3, b));
    // JoinGroup v2: group, session, rebalance, member, protocol type, [protocols]
    let mut b = str16("g");
    b.extend_from_slice(&10_000i32.to_be_bytes());
    b.extend_from_slice(&10_000i32.to_be_bytes());
    b.extend_from_slice(&str16(""));
    b.extend_from_slice(&str16("consumer"));
    b.extend_from_slice(&huge);
    v.push((11, 2, b));
    // ListOffsets v2: replica, isolation, [topics]
    let mut b = (-1i32).to_be_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(&huge);
    v.push((2, 2, b));
    // A string longer than the frame.
    v.push((10, 1, i16::MAX.to_be_bytes().to_vec()));
    v
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn hostile_requests_close_only_their_connection_and_allocate_nothing() {
    let f = fixture("hostile", |_| {});
    let mut healthy = logged_in(&f);
    // Warm-up: password checks leave their Argon2 memory in the allocator's per-thread arenas;
    // measure after that.
    for _ in 0..20 {
        drop(logged_in(&f));
    }
    let before = rss_kib();
    for round in 0..10 {
        for (key, v, body) in hostile_bodies() {
            let mut c = logged_in(&f);
            let fr = c.frame(key, v, &body);
            c.send(&fr);
            assert!(
                c.closed(),
                "round {round}: api {key} v{v} with a 2 GiB count was answered"
            );
        }
        // A frame announcing 2 GiB after authentication.
        let mut c = logged_in(&f);
        c.send(&i32::MAX.to_be_bytes());
        c.send(&[0u8; 1024]);
        assert!(c.closed());
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "memory grew by {grown} KiB");
    // Garbage of every length and api key: the server answers or closes, never dies.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut c = logged_in(&f);
    for _ in 0..300 {
        let key = (rnd() % 40) as i16;
        let v = (rnd() % 6) as i16;
        let n = (rnd() % 64) as usize;
        let body: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
        let fr = c.frame(key, v, &body);
        if !c.send(&fr) || c.recv().is_none() {
            c = logged_in(&f);
        }
    }
    // The healthy connection is still served.
    let r = healthy
        .call(3, 1, &metadata_v1(&["cdc"]))
        .expect("still served");
    assert!(r.windows(3).any(|w| w == b"cdc"));
    assert!(f.server.metrics().errors.get() >= 70);
    let _ = PW;
}
