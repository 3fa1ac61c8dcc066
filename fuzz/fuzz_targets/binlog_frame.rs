//! Arbitrary bytes through `frame_at`, walking events from offset 4 with each checksum
//! algorithm: framing must return `Event`, `End`, `Incomplete` or a typed error, never panic,
//! and every event it returns must lie inside the input and move the offset forward.

#![no_main]

use changetrack::binlog::frame::{frame_at, ChecksumAlg, Framed};
use libfuzzer_sys::fuzz_target;

/// Small enough that size-cap errors are reachable, large enough for real events.
const MAX_EVENT_SIZE: u32 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    for alg in [ChecksumAlg::None, ChecksumAlg::Off, ChecksumAlg::Crc32] {
        let mut offset = 4u64;
        let mut alg_in_force = alg;
        // Stops at the end, at an incomplete tail, or at the first error.
        while let Ok(Framed::Event(ev)) = frame_at(data, offset, alg_in_force, MAX_EVENT_SIZE) {
            assert_eq!(ev.offset, offset);
            let end = ev.end();
            assert!(end > offset, "framing did not advance at {offset}");
            assert!(end <= data.len() as u64, "event past the end of the input");
            assert!(ev.body.len() as u64 <= u64::from(ev.header.event_size));
            if let Some(a) = ev.fde_alg {
                alg_in_force = a;
            }
            offset = end;
        }
    }
    // Any offset, also past the end and inside the magic.
    if let Some(&b) = data.first() {
        let _ = frame_at(data, u64::from(b), ChecksumAlg::Crc32, MAX_EVENT_SIZE);
        let _ = frame_at(data, u64::MAX, ChecksumAlg::None, MAX_EVENT_SIZE);
    }
});
