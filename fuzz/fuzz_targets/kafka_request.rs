//! Arbitrary bytes as one Kafka request frame, in each phase of a connection (before
//! authentication, as the raw token of the legacy SASL flow, after authentication), through the
//! endpoint's own decoder: no panic, no allocation beyond the frame's size (libFuzzer's
//! `-rss_limit_mb` / `-malloc_limit_mb` catch one). Decoded SASL tokens and group assignments go
//! through their parsers too.
#![no_main]

use changetrack_kafka::wire::{assigned_partitions, decode_frame, Incoming, Phase, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for phase in [Phase::Unauthenticated, Phase::LegacyToken, Phase::Authenticated] {
        match decode_frame(data, phase) {
            Ok(Incoming::Request(_, Request::SyncGroup { assignments, .. })) => {
                for (_, a) in assignments {
                    let _ = assigned_partitions(&a, "changetrack");
                }
            }
            Ok(Incoming::Request(_, Request::JoinGroup { protocols, .. })) => {
                for (_, m) in protocols {
                    let _ = assigned_partitions(&m, "changetrack");
                }
            }
            Ok(Incoming::Request(_, Request::SaslAuthenticate { auth_bytes })) => {
                let _ = changetrack_kafka::sasl_plain(&auth_bytes);
            }
            Ok(Incoming::Token(t)) => {
                let _ = changetrack_kafka::sasl_plain(t);
            }
            _ => {}
        }
    }
});
