//! MariaDB's own events (types 160 and up), which mysql_common does not decode, and MariaDB's
//! zlib-compressed query and row events.

use std::io::Read;

use crate::binlog::rows::{le, Cursor};
use crate::error::{Error, ErrorKind, Result};

pub(crate) const ANNOTATE_ROWS: u8 = 160;
pub(crate) const BINLOG_CHECKPOINT: u8 = 161;
pub(crate) const GTID: u8 = 162;
pub(crate) const GTID_LIST: u8 = 163;
pub(crate) const START_ENCRYPTION: u8 = 164;
pub(crate) const QUERY_COMPRESSED: u8 = 165;
pub(crate) const WRITE_ROWS_COMPRESSED_V1: u8 = 166;
pub(crate) const UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
pub(crate) const DELETE_ROWS_COMPRESSED_V1: u8 = 168;
pub(crate) const WRITE_ROWS_COMPRESSED: u8 = 169;
pub(crate) const UPDATE_ROWS_COMPRESSED: u8 = 170;
pub(crate) const DELETE_ROWS_COMPRESSED: u8 = 171;

/// The GTID flags of MariaDB's GTID event.
pub(crate) const FL_STANDALONE: u8 = 1;
pub(crate) const FL_GROUP_COMMIT_ID: u8 = 2;
pub(crate) const FL_PREPARED_XA: u8 = 64;
pub(crate) const FL_COMPLETED_XA: u8 = 128;

/// An XA transaction id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Xid {
    pub(crate) format_id: i64,
    pub(crate) gtrid: Vec<u8>,
    pub(crate) bqual: Vec<u8>,
}

/// MariaDB's GTID event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MariaGtid {
    pub(crate) seq_no: u64,
    pub(crate) domain_id: u32,
    pub(crate) flags: u8,
    pub(crate) xid: Option<Xid>,
}

impl MariaGtid {
    pub(crate) fn parse(body: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(body);
        let seq_no = c.uint_le(8)?;
        let domain_id = c.uint_le(4)? as u32;
        let flags = c.u8()?;
        let mut xid = None;
        if flags & FL_GROUP_COMMIT_ID != 0 {
            c.uint_le(8)?;
        }
        if flags & (FL_PREPARED_XA | FL_COMPLETED_XA) != 0 {
            let format_id = c.uint_le(4)? as u32 as i32;
            let gtrid_len = usize::from(c.u8()?);
            let bqual_len = usize::from(c.u8()?);
            if gtrid_len > 64 || bqual_len > 64 {
                return Err(Error::corruption("MariaDB GTID event has an oversized XID"));
            }
            xid = Some(Xid {
                format_id: i64::from(format_id),
                gtrid: c.take(gtrid_len)?.to_vec(),
                bqual: c.take(bqual_len)?.to_vec(),
            });
        }
        Ok(Self {
            seq_no,
            domain_id,
            flags,
            xid,
        })
    }

    /// `domain-server-seq`.
    pub(crate) fn to_string_with(&self, server_id: u32) -> String {
        format!("{}-{}-{}", self.domain_id, server_id, self.seq_no)
    }
}

/// Parses a GTID_LIST event: the GTID state at the start of the file.
pub(crate) fn parse_gtid_list(body: &[u8]) -> Result<Vec<String>> {
    let mut c = Cursor::new(body);
    let count = (c.uint_le(4)? & 0x0fff_ffff) as usize;
    if count.checked_mul(16).is_none_or(|n| n > body.len()) {
        return Err(Error::corruption("GTID_LIST count larger than the event"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let domain = c.uint_le(4)?;
        let server = c.uint_le(4)?;
        let seq = c.uint_le(8)?;
        out.push(format!("{domain}-{server}-{seq}"));
    }
    Ok(out)
}

/// Parses a BINLOG_CHECKPOINT event: the name of the oldest binlog still needed for recovery.
pub(crate) fn parse_binlog_checkpoint(body: &[u8]) -> Result<String> {
    let mut c = Cursor::new(body);
    let len = usize::try_from(c.uint_le(4)?).map_err(|_| Error::corruption("name length"))?;
    Ok(String::from_utf8_lossy(c.take(len)?).into_owned())
}

/// Decompresses MariaDB's compressed payload: a header byte (0x80 | length-bytes, algorithm 0 =
/// zlib), the uncompressed length big-endian, then a zlib stream. The claimed length is checked
/// against `max_len` before anything is allocated.
pub(crate) fn uncompress(data: &[u8], max_len: usize) -> Result<Vec<u8>> {
    let (&head, rest) = data
        .split_first()
        .ok_or_else(|| Error::corruption("empty compressed payload"))?;
    if head & 0x80 == 0 || head & 0x70 != 0 {
        return Err(Error::unsupported(format!(
            "compressed event uses unknown compression header {head:#04x}"
        )));
    }
    let lenlen = usize::from(head & 0x07);
    if !(1..=4).contains(&lenlen) {
        return Err(Error::corruption(
            "compressed event has a bad length header",
        ));
    }
    let len_bytes = rest
        .get(..lenlen)
        .ok_or_else(|| Error::corruption("compressed event too short"))?;
    let len = crate::binlog::rows::be(len_bytes) as usize;
    if len > max_len {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("compressed event expands to {len} bytes, over the {max_len}-byte cap"),
        ));
    }
    let mut out = Vec::with_capacity(len);
    let z = rest.get(lenlen..).unwrap_or_default();
    flate2::read::ZlibDecoder::new(z)
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corruption(format!("compressed event does not inflate: {e}")))?;
    if out.len() != len {
        return Err(Error::corruption(format!(
            "compressed event inflates to {} bytes, header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// Parses the XA_PREPARE event body (MySQL and MariaDB): one_phase, then the XID.
pub(crate) fn parse_xa_prepare(body: &[u8]) -> Result<(bool, Xid)> {
    let mut c = Cursor::new(body);
    let one_phase = c.u8()? != 0;
    let format_id = le(c.take(4)?) as u32 as i32;
    let gtrid_len = c.uint_le(4)? as usize;
    let bqual_len = c.uint_le(4)? as usize;
    if gtrid_len > 64 || bqual_len > 64 {
        return Err(Error::corruption("XA_PREPARE event has an oversized XID"));
    }
    let gtrid = c.take(gtrid_len)?.to_vec();
    let bqual = c.take(bqual_len)?.to_vec();
    Ok((
        one_phase,
        Xid {
            format_id: i64::from(format_id),
            gtrid,
            bqual,
        },
    ))
}

/// Parses the XID in `XA COMMIT|ROLLBACK|START|END|PREPARE <xid>` text: `X'hex',X'hex',fmt`,
/// `'gtrid'[,'bqual'[,fmt]]`, with an optional trailing `ONE PHASE`.
pub(crate) fn parse_xid_text(s: &str) -> Option<Xid> {
    let mut s = s.trim().trim_end_matches(';').trim();
    let upper = s.to_ascii_uppercase();
    if let Some(stripped) = upper.strip_suffix("ONE PHASE") {
        s = s.get(..stripped.trim_end().len())?;
    }
    let mut parts = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let (part, next) = match b.get(i)? {
            b'X' | b'x' if b.get(i + 1) == Some(&b'\'') => {
                let end = i + 2 + b.get(i + 2..)?.iter().position(|&c| c == b'\'')?;
                let hex = s.get(i + 2..end)?;
                let bytes = (0..hex.len() / 2)
                    .map(|k| u8::from_str_radix(hex.get(2 * k..2 * k + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?;
                (Part::Bytes(bytes), end + 1)
            }
            b'\'' | b'"' => {
                let q = b[i];
                let end = i + 1 + b.get(i + 1..)?.iter().position(|&c| c == q)?;
                (Part::Bytes(b.get(i + 1..end)?.to_vec()), end + 1)
            }
            _ => {
                let end = i + b
                    .get(i..)?
                    .iter()
                    .position(|&c| c == b',')
                    .unwrap_or(b.len() - i);
                let n: i64 = s.get(i..end)?.trim().parse().ok()?;
                (Part::Num(n), end)
            }
        };
        parts.push(part);
        i = next;
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if b.get(i) == Some(&b',') {
            i += 1;
        }
    }
    let mut it = parts.into_iter();
    let gtrid = match it.next()? {
        Part::Bytes(b) => b,
        Part::Num(_) => return None,
    };
    let bqual = match it.next() {
        Some(Part::Bytes(b)) => b,
        None => Vec::new(),
        Some(Part::Num(_)) => return None,
    };
    let format_id = match it.next() {
        Some(Part::Num(n)) => n,
        None => 1,
        Some(Part::Bytes(_)) => return None,
    };
    Some(Xid {
        format_id,
        gtrid,
        bqual,
    })
}

enum Part {
    Bytes(Vec<u8>),
    Num(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_text() {
        let x = parse_xid_text("X'78615f636f6d6d6974',X'',1").unwrap();
        assert_eq!(x.gtrid, b"xa_commit");
        assert_eq!(x.bqual, b"");
        assert_eq!(x.format_id, 1);
        assert_eq!(parse_xid_text("'xa_commit'").unwrap(), x);
        assert_eq!(parse_xid_text("'xa_commit' ONE PHASE").unwrap(), x);
        assert!(parse_xid_text("").is_none());
    }

    #[test]
    fn uncompress_checks_lengths() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"hello world").unwrap();
        let zdata = z.finish().unwrap();
        let mut ev = vec![0x81, 11];
        ev.extend_from_slice(&zdata);
        assert_eq!(uncompress(&ev, 100).unwrap(), b"hello world");
        assert_eq!(
            uncompress(&ev, 5).unwrap_err().kind(),
            ErrorKind::LimitExceeded
        );
        ev[1] = 12;
        assert_eq!(
            uncompress(&ev, 100).unwrap_err().kind(),
            ErrorKind::Corruption
        );
        assert!(uncompress(&[], 100).is_err());
    }
}
