//! Arbitrary bytes as a whole binlog file: every record the reader yields is rendered as JSON
//! and DTS Avro. Nothing may panic; errors end the file. The renderings must also be readable:
//! the JSON parses, and apache-avro decodes the Avro bytes with the DTS schema (a sample of the
//! records of long inputs).

#![no_main]

use changetrack::record::{avro, json};
use changetrack::{BinlogOptions, BinlogReader};
use libfuzzer_sys::fuzz_target;

/// Records per input whose Avro is decoded by apache-avro; after that, one in [`AVRO_EVERY`].
const AVRO_CHECKED: usize = 16;
/// Sampling rate of the Avro check past the first [`AVRO_CHECKED`] records.
const AVRO_EVERY: usize = 256;

fuzz_target!(|data: &[u8]| {
    let opts = BinlogOptions {
        // Bound allocations derived from input lengths.
        max_event_size: 1 << 20,
        max_inflated_file: 16 << 20,
        max_pending_xa_bytes: 1 << 20,
        max_table_maps: 64,
        ..BinlogOptions::default()
    };
    let reader = BinlogReader::from_bytes("fuzz.000001", 1, data.to_vec(), opts);
    for (i, rec) in reader.enumerate() {
        let Ok(rec) = rec else { break };
        let text = json::to_json(&rec, true);
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            panic!("invalid JSON ({e}): {text}");
        }
        let bytes = avro::to_avro(&rec);
        // apache-avro resolves the schema on every call: check a sample so that inputs with
        // thousands of rows stay fast (the fuzzer mostly works on small inputs anyway).
        if i >= AVRO_CHECKED && i % AVRO_EVERY != 0 {
            continue;
        }
        if let Err(e) = avro::decode_with_apache_avro(&bytes) {
            panic!("DTS Avro that apache-avro cannot read ({e}): {rec:?}");
        }
    }
});
