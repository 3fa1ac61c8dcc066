//! Column-family names and order-preserving key codecs (big-endian, so keys sort as numbers).

use crate::error::{Error, Result};
use crate::record::Checkpoint;

/// Records by sequence number: `seq u64 BE` -> encoded record.
pub const CF_RECORDS: &str = "records";
/// Checkpoint index: `file_index u32 BE, offset u64 BE` -> first `seq u64 BE` at that checkpoint.
pub const CF_BY_CHECKPOINT: &str = "by_checkpoint";
/// Time index: `timestamp u32 BE` -> first `seq u64 BE` at which the running maximum of record
/// timestamps reached that second.
pub const CF_BY_TIME: &str = "by_time";
/// Transaction starts: `seq u64 BE` of each stored transaction's first record -> empty.
pub const CF_TXNS: &str = "txns";
/// Tables and interned strings: `'t' id u64 BE` -> table, `'s' id u64 BE` -> string.
pub const CF_DICT: &str = "dict";
/// Source state: the resume position and the committed tail.
pub const CF_STATE: &str = "state";
/// Metadata: format version.
pub const CF_META: &str = "meta";
/// Object index: runs of consecutive records of one table (`'t'`, database, table) or of one
/// database (`'d'`, database), keyed by the run's first seq: see [`object_key`] -> last
/// `seq u64 BE` of the run.
pub const CF_BY_OBJECT: &str = "by_object";

/// Every column family, in creation order.
pub const ALL_CFS: [&str; 8] = [
    CF_RECORDS,
    CF_BY_CHECKPOINT,
    CF_BY_TIME,
    CF_TXNS,
    CF_DICT,
    CF_STATE,
    CF_META,
    CF_BY_OBJECT,
];

/// `state` key of the resume position.
pub const KEY_SOURCE: &[u8] = b"source";
/// `state` key of the committed tail (last seq, bytes, records, oldest seq).
pub const KEY_TAIL: &[u8] = b"tail";
/// `meta` key of the format version.
pub const KEY_FORMAT: &[u8] = b"format";

/// A sequence number key.
#[must_use]
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes a sequence number key or value.
///
/// # Errors
/// `Corruption` for a value of the wrong length.
pub fn seq_from(b: &[u8]) -> Result<u64> {
    let a: [u8; 8] = b
        .try_into()
        .map_err(|_| Error::corruption("stored sequence number has the wrong length"))?;
    Ok(u64::from_be_bytes(a))
}

/// A checkpoint index key.
#[must_use]
pub fn checkpoint_key(cp: Checkpoint) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&cp.file_index.to_be_bytes());
    k[4..].copy_from_slice(&cp.offset.to_be_bytes());
    k
}

/// Decodes a checkpoint index key.
///
/// # Errors
/// `Corruption` for a key of the wrong length.
pub fn checkpoint_from(k: &[u8]) -> Result<Checkpoint> {
    if k.len() != 12 {
        return Err(Error::corruption(
            "checkpoint index key has the wrong length",
        ));
    }
    let file = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
    let off = seq_from(&k[4..])?;
    Ok(Checkpoint::new(file, off))
}

/// The prefix of an object index key: `'t' len u16 BE, database, len u16 BE, table` for a
/// table, `'d' len u16 BE, database` for a database. Names are at most 64 characters (256
/// bytes), so the lengths never overflow.
#[must_use]
pub fn object_prefix(database: &str, table: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + database.len() + table.map_or(0, str::len));
    k.push(if table.is_some() { b't' } else { b'd' });
    let mut name = |s: &str| {
        let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
        k.extend_from_slice(&n.to_be_bytes());
        k.extend_from_slice(&s.as_bytes()[..usize::from(n)]);
    };
    name(database);
    if let Some(t) = table {
        name(t);
    }
    k
}

/// An object index key: the prefix, then the run's first `seq u64 BE`.
#[must_use]
pub fn object_key(prefix: &[u8], first_seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&first_seq.to_be_bytes());
    k
}

/// A time index key.
#[must_use]
pub fn time_key(ts: u32) -> [u8; 4] {
    ts.to_be_bytes()
}

/// A dictionary key.
#[must_use]
pub fn dict_key(kind: u8, id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = kind;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_values() {
        let cps = [
            Checkpoint::new(1, 4),
            Checkpoint::new(1, 300),
            Checkpoint::new(2, 4),
            Checkpoint::new(10, 0),
        ];
        for w in cps.windows(2) {
            assert!(checkpoint_key(w[0]) < checkpoint_key(w[1]));
            assert_eq!(checkpoint_from(&checkpoint_key(w[0])).unwrap(), w[0]);
        }
        assert!(seq_key(255) < seq_key(256));
        assert!(time_key(1_000) < time_key(70_000));
        assert!(seq_from(&[1, 2]).is_err());
    }
}
