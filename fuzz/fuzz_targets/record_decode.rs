//! Arbitrary bytes as a stored record (the store's own encoding, `record::codec`), decoded
//! against a dictionary that holds a few tables and strings. `codec::decode` must return a
//! record or a typed error, never panic, whether string values share the input buffer or are
//! copied. A decoded record must render as JSON that parses, and encoding it again must be
//! stable: its bytes decode to a record that encodes to the same bytes. DTS Avro written
//! straight from the bytes (`AvroWriter::write_from_stored`) fails exactly when decoding fails,
//! and otherwise equals the Avro of the decoded record.

#![no_main]

use std::sync::Arc;

use changetrack::record::avro::{self, AvroWriter};
use changetrack::record::codec::{self, Dictionary, MemoryDictionary};
use changetrack::record::{json, ColumnKind, Field, TableInfo};
use libfuzzer_sys::fuzz_target;

fn field(name: &str, kind: ColumnKind, type_code: u8, charset: Option<&'static str>) -> Field {
    Field {
        name: name.into(),
        type_code,
        type_name: format!("{kind:?}").to_lowercase(),
        kind,
        charset,
        collation: None,
        unsigned: Some(false),
        nullable: true,
        primary_key: false,
    }
}

/// Tables 0-2 (1, 3 and 12 columns) and strings 0-2, as a store's dictionary would hold them.
fn dictionary() -> MemoryDictionary {
    let mut d = MemoryDictionary::default();
    let wide = vec![
        field("id", ColumnKind::Integer, 8, None),
        field("f", ColumnKind::Float, 4, None),
        field("d", ColumnKind::Decimal, 246, None),
        field("b", ColumnKind::Bit, 16, None),
        field("dt", ColumnKind::DateTime, 18, None),
        field("ts", ColumnKind::Timestamp, 17, None),
        field("t", ColumnKind::Time, 19, None),
        field("s", ColumnKind::String, 15, Some("utf8mb4")),
        field("e", ColumnKind::Enum, 247, Some("latin1")),
        field("set", ColumnKind::Set, 248, Some("gbk")),
        field("j", ColumnKind::Json, 245, None),
        field("g", ColumnKind::Geometry, 255, None),
    ];
    for fields in [
        vec![field("pk", ColumnKind::Integer, 3, None)],
        vec![
            field("pk", ColumnKind::Integer, 3, None),
            field("v", ColumnKind::Blob, 252, Some("binary")),
            field("y", ColumnKind::Year, 13, None),
        ],
        wide,
    ] {
        let n = fields.len();
        d.table_id(&Arc::new(TableInfo::new(
            "db".into(),
            format!("t{n}"),
            fields,
            vec![0],
            false,
        )));
    }
    for s in [
        "10.11.19-MariaDB-log",
        "0-1",
        "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    ] {
        d.string_id(s);
    }
    d
}

fuzz_target!(|data: &[u8]| {
    let mut dict = dictionary();
    let shared = bytes::Bytes::copy_from_slice(data);
    let mut direct = Vec::new();
    let stored = AvroWriter::new().write_from_stored(
        &mut direct,
        data,
        7,
        &dict,
        &mut codec::DecodeCache::default(),
    );
    match (&stored, codec::decode(data, &shared, 7, &dict)) {
        (Ok(_), Ok(rec)) => assert!(
            direct == avro::to_avro(&rec),
            "Avro from stored bytes differs"
        ),
        (Err(_), Err(_)) => assert!(direct.is_empty()),
        (s, d) => panic!(
            "write_from_stored {:?} but decode {:?}",
            s.is_ok(),
            d.is_ok()
        ),
    }
    for buf in [shared.clone(), bytes::Bytes::new()] {
        let Ok(rec) = codec::decode(data, &buf, 7, &dict) else {
            continue;
        };
        let text = json::to_json(&rec, true);
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            panic!("decoded record renders as bad JSON ({e}): {text}");
        }
        let mut once = Vec::new();
        codec::encode(&mut once, &rec, &mut dict);
        let again = codec::decode(&once, &bytes::Bytes::new(), 7, &dict)
            .unwrap_or_else(|e| panic!("re-encoded record does not decode: {e}"));
        let mut twice = Vec::new();
        codec::encode(&mut twice, &again, &mut dict);
        assert_eq!(once, twice, "encoding is not stable");
    }
});
