//! How a stored record becomes a Kafka record, and a Kafka offset a store position. One place,
//! shared by the endpoint and by anything that writes records to Kafka.
//!
//! - **Offset = seq.** The store numbers records 1, 2, 3, ... densely; the Kafka offset of a
//!   record is its seq, unchanged. The log start offset is the oldest stored seq (1 until
//!   retention trims), the high watermark is the newest seq + 1. An empty store has log start =
//!   high watermark = 1.
//! - **Committed offset = next seq.** Kafka commits name the next record to read; the store's
//!   committed position names the last record consumed. A Kafka commit of offset `o` stores
//!   position `o - 1`, and OffsetFetch answers position + 1.
//! - **Value** = the record's DTS Avro bytes (the same bytes as `consume --format avro`, without
//!   the length prefix). **Key** = null. **Timestamp** = the source time in milliseconds
//!   (CreateTime; the binlog has whole seconds, so it is a multiple of 1000).
//! - **Headers** (optional, [`RecordHeaders`]): `seq`, `checkpoint`, `op`, `database`, `table`.

use changetrack::record::avro;
use changetrack::ChangeRecord;

/// The Kafka offset of a stored record.
#[must_use]
pub fn offset_of(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The seq at a Kafka offset (`None` for a negative offset).
#[must_use]
pub fn seq_at(offset: i64) -> Option<u64> {
    u64::try_from(offset).ok()
}

/// A record's Kafka timestamp: its source time in milliseconds.
#[must_use]
pub fn timestamp_ms(rec: &ChangeRecord) -> i64 {
    i64::from(rec.timestamp) * 1000
}

/// A Kafka ListOffsets timestamp as epoch seconds, rounded up (the first record at or after
/// it). Values below 1e11 are seconds (what the DTS SDK passes: 1e11 s is the year 5138), the
/// rest milliseconds (what librdkafka and Java users pass: 1e11 ms is March 1973). `None` for
/// a negative value.
#[must_use]
pub fn timestamp_secs(ts: i64) -> Option<u32> {
    const SECONDS_BELOW: i64 = 100_000_000_000;
    if ts < 0 {
        return None;
    }
    let secs = if ts < SECONDS_BELOW {
        ts
    } else {
        ts / 1000 + i64::from(ts % 1000 != 0)
    };
    Some(u32::try_from(secs).unwrap_or(u32::MAX))
}

/// Appends a record's Kafka value (its DTS Avro bytes) to `out`.
pub fn write_value(out: &mut Vec<u8>, rec: &ChangeRecord) {
    avro::write_record(out, rec);
}

/// The headers of a record, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordHeaders {
    /// The store's seq.
    pub seq: String,
    /// `offset@file_index`.
    pub checkpoint: String,
    /// INSERT, UPDATE, DELETE, DDL, BEGIN, COMMIT or HEARTBEAT.
    pub op: &'static str,
    /// The database, when the record has one.
    pub database: Option<String>,
    /// The table, when the record has one.
    pub table: Option<String>,
}

impl RecordHeaders {
    /// The headers of `rec`.
    #[must_use]
    pub fn of(rec: &ChangeRecord) -> Self {
        Self {
            seq: rec.seq.to_string(),
            checkpoint: rec.checkpoint.to_string(),
            op: rec.op.as_str(),
            database: rec.database_name().map(str::to_owned),
            table: rec.table_name().map(str::to_owned),
        }
    }

    /// As `(key, value)` pairs, in a fixed order; absent database/table are left out.
    #[must_use]
    pub fn pairs(&self) -> Vec<(&'static str, &[u8])> {
        let mut v = vec![
            ("seq", self.seq.as_bytes()),
            ("checkpoint", self.checkpoint.as_bytes()),
            ("op", self.op.as_bytes()),
        ];
        if let Some(d) = &self.database {
            v.push(("database", d.as_bytes()));
        }
        if let Some(t) = &self.table {
            v.push(("table", t.as_bytes()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_seconds_below_1e11_and_milliseconds_above() {
        assert_eq!(timestamp_secs(1_700_000_000), Some(1_700_000_000));
        assert_eq!(timestamp_secs(1_700_000_000_000), Some(1_700_000_000));
        assert_eq!(timestamp_secs(1_700_000_000_001), Some(1_700_000_001));
        // Seconds past 2106 do not fit the store's u32 time: they clamp.
        assert_eq!(timestamp_secs(99_999_999_999), Some(u32::MAX));
        assert_eq!(timestamp_secs(100_000_000_000), Some(100_000_000));
        assert_eq!(timestamp_secs(0), Some(0));
        assert_eq!(timestamp_secs(-1), None);
    }

    #[test]
    fn offsets_are_seqs() {
        assert_eq!(offset_of(1), 1);
        assert_eq!(seq_at(42), Some(42));
        assert_eq!(seq_at(-1), None);
        assert_eq!(offset_of(u64::MAX), i64::MAX);
    }
}
