//! The RecordBatch v2 writer (Kafka's on-wire and on-disk record format, magic 2).
//!
//! Layout (KIP-98; KAFKA-WIRE-NOTES §2): a 61-byte header — base offset, batch length,
//! partition leader epoch, magic, CRC-32C of everything after the CRC field, attributes, last
//! offset delta, base and max timestamps, producer id/epoch, base sequence, record count — and
//! the records. A record is its length (zig-zag varint), attributes, timestamp delta (zig-zag
//! varlong), offset delta, key and value (zig-zag varint lengths, -1 = null) and headers.
//! Uncompressed, CreateTime timestamps, no producer (the endpoint serves what is stored).

const HEADER_LEN: usize = 61;

/// A zig-zag varint (Kafka's `ByteUtils.writeVarlong`): the length of a record's fields.
fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    let bits = 64 - z.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One record header (key, value).
pub type Header<'a> = (&'a str, &'a [u8]);

/// Builds one batch at the end of a buffer. Records must come in offset order.
pub struct BatchWriter<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
    base_offset: i64,
    base_ts: i64,
    max_ts: i64,
    last_offset: i64,
    count: i32,
}

impl<'b> BatchWriter<'b> {
    /// Starts a batch whose first record has `base_offset` and `base_timestamp` (ms).
    pub fn new(out: &'b mut Vec<u8>, base_offset: i64, base_timestamp: i64) -> Self {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        Self {
            out,
            start,
            base_offset,
            base_ts: base_timestamp,
            max_ts: base_timestamp,
            last_offset: base_offset,
            count: 0,
        }
    }

    /// Bytes written so far, header included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }

    /// Whether no record was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends a record.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) {
        let ts_delta = timestamp - self.base_ts;
        let off_delta = offset - self.base_offset;
        let opt_len = |b: Option<&[u8]>| b.map_or(-1, |b| len_i64(b.len()));
        let key_len = opt_len(key);
        let value_len = opt_len(value);
        let mut body = 1 // attributes
            + varlong_len(ts_delta)
            + varlong_len(off_delta)
            + varlong_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varlong_len(value_len)
            + value.map_or(0, <[u8]>::len)
            + varlong_len(len_i64(headers.len()));
        for (k, v) in headers {
            body +=
                varlong_len(len_i64(k.len())) + k.len() + varlong_len(len_i64(v.len())) + v.len();
        }
        self.out.reserve(body + 5);
        put_varlong(self.out, len_i64(body));
        self.out.push(0);
        put_varlong(self.out, ts_delta);
        put_varlong(self.out, off_delta);
        put_varlong(self.out, key_len);
        if let Some(k) = key {
            self.out.extend_from_slice(k);
        }
        put_varlong(self.out, value_len);
        if let Some(v) = value {
            self.out.extend_from_slice(v);
        }
        put_varlong(self.out, len_i64(headers.len()));
        for (k, v) in headers {
            put_varlong(self.out, len_i64(k.len()));
            self.out.extend_from_slice(k.as_bytes());
            put_varlong(self.out, len_i64(v.len()));
            self.out.extend_from_slice(v);
        }
        self.max_ts = self.max_ts.max(timestamp);
        self.last_offset = offset;
        self.count += 1;
    }

    /// Writes the header (lengths, counts, CRC). An empty batch is removed again.
    pub fn finish(self) {
        if self.count == 0 {
            self.out.truncate(self.start);
            return;
        }
        let total = self.out.len() - self.start;
        let h = &mut self.out[self.start..self.start + HEADER_LEN];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        let batch_len = i32::try_from(total - 12).unwrap_or(i32::MAX);
        h[8..12].copy_from_slice(&batch_len.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        h[16] = 2; // magic
        h[21..23].copy_from_slice(&0i16.to_be_bytes()); // attributes
        let last_delta = i32::try_from(self.last_offset - self.base_offset).unwrap_or(i32::MAX);
        h[23..27].copy_from_slice(&last_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.base_ts.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_ts.to_be_bytes());
        h[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producer id
        h[51..53].copy_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        h[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // base sequence
        h[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&self.out[self.start + 21..]);
        self.out[self.start + 17..self.start + 21].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_annotated_example_of_the_notes() {
        // KAFKA-WIRE-NOTES §2: 3 records, offsets 0-2, ts 1700000000000 + i*1000, "value-i".
        let mut out = Vec::new();
        let mut w = BatchWriter::new(&mut out, 0, 1_700_000_000_000);
        for i in 0..3i64 {
            let v = format!("value-{i}");
            w.push(
                i,
                1_700_000_000_000 + i * 1000,
                None,
                Some(v.as_bytes()),
                &[],
            );
        }
        w.finish();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        let want = concat!(
            "0000000000000000",
            "0000005d",
            "ffffffff",
            "02",
            // CRC depends on the leader epoch? No: the epoch is before the CRC'd range.
            "63bccf8b",
            "0000",
            "00000002",
            "0000018bcfe56800",
            "0000018bcfe56fd0",
            "ffffffffffffffff",
            "ffff",
            "ffffffff",
            "00000003",
            "1a000000010e76616c75652d3000",
            "1c00d00f02010e76616c75652d3100",
            "1c00a01f04010e76616c75652d3200",
        );
        assert_eq!(hex, want);
    }

    #[test]
    fn varlong_lengths_match_the_encoding() {
        for v in [0i64, 1, -1, 63, 64, -65, 8191, 1 << 40, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v), "{v}");
        }
    }

    #[test]
    fn an_empty_batch_writes_nothing() {
        let mut out = vec![1, 2, 3];
        BatchWriter::new(&mut out, 5, 0).finish();
        assert_eq!(out, [1, 2, 3]);
    }
}
