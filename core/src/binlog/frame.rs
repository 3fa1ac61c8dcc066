//! Event framing: v4 headers, size bounds, the incomplete tail, and CRC32 checks.
//!
//! Framing happens before any parsing: only complete, checksum-verified events are handed on.

use crate::error::{Error, ErrorKind, Result};

/// Length of a v4 event header.
pub const HEADER_LEN: usize = 19;
/// The four magic bytes at the start of every binlog file.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// Event type of FORMAT_DESCRIPTION.
pub(crate) const FORMAT_DESCRIPTION: u8 = 15;
/// Event type of the pre-v4 START_EVENT_V3.
pub(crate) const START_EVENT_V3: u8 = 1;
/// `LOG_EVENT_BINLOG_IN_USE_F`: set in the FDE of a file the server still has open.
const BINLOG_IN_USE: u16 = 0x1;
/// Smallest body a v4 FORMAT_DESCRIPTION event can have.
const FDE_MIN_BODY: usize = 2 + 50 + 4 + 1;

/// A v4 event header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the epoch.
    pub timestamp: u32,
    /// Event type code.
    pub type_code: u8,
    /// Originating server id.
    pub server_id: u32,
    /// Size of the whole event, header and checksum included.
    pub event_size: u32,
    /// End position of the event as the server wrote it (0 in some relay logs).
    pub log_pos: u32,
    /// Event flags.
    pub flags: u16,
}

impl EventHeader {
    /// Parses a header from at least [`HEADER_LEN`] bytes.
    #[must_use]
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Self {
            timestamp: u32_at(0),
            type_code: b[4],
            server_id: u32_at(5),
            event_size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        }
    }
}

/// Whether events carry a CRC32 trailer, as the FORMAT_DESCRIPTION event announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChecksumAlg {
    /// No FDE seen yet, or a pre-5.6 FDE: no trailer.
    #[default]
    None,
    /// `binlog_checksum=NONE` on a checksum-capable server: no trailer on events (the FDE
    /// itself still has one, which is not verified).
    Off,
    /// `binlog_checksum=CRC32`: every event ends with a CRC32 of the rest of it.
    Crc32,
}

/// A complete, verified event borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub struct RawEvent<'a> {
    /// Byte offset of the event in its file.
    pub offset: u64,
    /// The parsed header.
    pub header: EventHeader,
    /// The event bytes after the header, without a checksum trailer (and, for the FDE, without
    /// the checksum algorithm byte).
    pub body: &'a [u8],
    /// For a FORMAT_DESCRIPTION event: the checksum algorithm it announces.
    pub fde_alg: Option<ChecksumAlg>,
}

impl RawEvent<'_> {
    /// Byte offset just past the event: where the next one starts.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.header.event_size)
    }
}

/// What [`frame_at`] found.
#[derive(Debug)]
pub enum Framed<'a> {
    /// A complete event.
    Event(RawEvent<'a>),
    /// The input ends exactly at an event boundary.
    End,
    /// The input ends inside an event (or its header): more bytes are needed. Resume at `offset`.
    Incomplete {
        /// Where the partial event starts.
        offset: u64,
        /// Bytes present from there.
        have: u64,
        /// Bytes the event needs (the header length if even the header is cut).
        need: u64,
    },
}

/// Reads the server version out of an FDE body.
pub(crate) fn fde_server_version(body: &[u8]) -> String {
    let v = body.get(2..52).unwrap_or_default();
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(v.get(..end).unwrap_or_default()).into_owned()
}

fn version_triple(v: &str) -> (u32, u32, u32) {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next(), next())
}

/// Whether a server of this version writes the checksum-algorithm byte in its FDE
/// (MySQL 5.6.1 and later, MariaDB 5.3 and later).
pub(crate) fn fde_has_checksum_alg(version: &str) -> bool {
    let t = version_triple(version);
    if version.contains("MariaDB") {
        t >= (5, 3, 0)
    } else {
        t >= (5, 6, 1)
    }
}

/// The largest event any server writes: MySQL's and MariaDB's `max_allowed_packet` (and the
/// replica's `slave_max_allowed_packet`) cannot exceed 1 GiB. A header claiming more (unless
/// `max_event_size` was raised past it) is damaged, not merely over a cap.
pub const MAX_PLAUSIBLE_EVENT: u32 = 1 << 30;

/// `binlog_checksum` values of the FDE's checksum-algorithm byte.
const ALG_OFF: u8 = 0;
const ALG_CRC32: u8 = 1;
/// `BINLOG_CHECKSUM_ALG_UNDEF`: written by relay logs for a source that did not say.
const ALG_UNDEF: u8 = 255;

/// Frames one event at `offset` of `buf` (a whole binlog file, magic included).
///
/// `alg` is the checksum algorithm in force (from the last FDE); for an FDE it is worked out
/// from the event itself. `max_event_size` caps the event size.
///
/// # Errors
/// As [`frame_event`].
pub fn frame_at(
    buf: &[u8],
    offset: u64,
    alg: ChecksumAlg,
    max_event_size: u32,
) -> Result<Framed<'_>> {
    let start = usize::try_from(offset).map_err(|_| Error::invalid("offset too large"))?;
    let rest = buf.get(start..).unwrap_or_default();
    frame_event(rest, offset, alg, max_event_size)
}

/// Frames the event at the start of `rest`, the bytes of a binlog file from `offset` (the
/// event's offset in the file, for positions and errors) to the end of what is known of the
/// file.
///
/// # Errors
/// `Corruption` for an impossible size (less than a header, or more than
/// [`MAX_PLAUSIBLE_EVENT`] when the cap is not above it), a checksum mismatch, or an FDE with an
/// unknown checksum algorithm or a bad checksum of its own; `LimitExceeded` for an event over
/// the cap. A short tail is not an error: it is [`Framed::Incomplete`].
pub fn frame_event(
    rest: &[u8],
    offset: u64,
    alg: ChecksumAlg,
    max_event_size: u32,
) -> Result<Framed<'_>> {
    if rest.is_empty() {
        return Ok(Framed::End);
    }
    let Some(hdr) = rest.first_chunk::<HEADER_LEN>() else {
        return Ok(Framed::Incomplete {
            offset,
            have: rest.len() as u64,
            need: HEADER_LEN as u64,
        });
    };
    let header = EventHeader::parse(hdr);
    let size = header.event_size as usize;
    if size < HEADER_LEN {
        return Err(Error::corruption(format!(
            "event of type {} claims a size of {} bytes, less than its own header",
            header.type_code, header.event_size
        ))
        .at_offset(offset));
    }
    if header.event_size > max_event_size {
        if header.event_size > MAX_PLAUSIBLE_EVENT {
            return Err(Error::corruption(format!(
                "event of type {} claims a size of {} bytes, more than any server writes \
                 ({MAX_PLAUSIBLE_EVENT}): its length field is damaged",
                header.type_code, header.event_size
            ))
            .at_offset(offset));
        }
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "event of type {} is {} bytes, over the {max_event_size}-byte event size cap \
                 (`max_event_size` / `--max-event-size`)",
                header.type_code, header.event_size
            ),
        )
        .at_offset(offset));
    }
    let Some(event) = rest.get(..size) else {
        return Ok(Framed::Incomplete {
            offset,
            have: rest.len() as u64,
            need: size as u64,
        });
    };
    let mut body = event.get(HEADER_LEN..).unwrap_or_default();
    let is_fde = header.type_code == FORMAT_DESCRIPTION;
    let mut fde_alg = None;
    let verify = if is_fde {
        if body.len() < FDE_MIN_BODY {
            return Err(
                Error::corruption("FORMAT_DESCRIPTION event is too short").at_offset(offset)
            );
        }
        if fde_has_checksum_alg(&fde_server_version(body)) && body.len() >= FDE_MIN_BODY + 5 {
            let alg_byte = body.get(body.len() - 5).copied().unwrap_or(0);
            body = body.get(..body.len() - 5).unwrap_or_default();
            // The FDE carries a CRC32 of its own whatever the algorithm it announces (OFF
            // included): only an undefined algorithm comes without one.
            match alg_byte {
                ALG_CRC32 => {
                    fde_alg = Some(ChecksumAlg::Crc32);
                    true
                }
                ALG_OFF => {
                    fde_alg = Some(ChecksumAlg::Off);
                    true
                }
                ALG_UNDEF => {
                    fde_alg = Some(ChecksumAlg::Off);
                    false
                }
                other => {
                    return Err(Error::corruption(format!(
                        "FORMAT_DESCRIPTION event announces checksum algorithm {other}, \
                         which does not exist (0 is NONE, 1 is CRC32): the byte is damaged"
                    ))
                    .at_offset(offset));
                }
            }
        } else {
            fde_alg = Some(ChecksumAlg::None);
            false
        }
    } else if alg == ChecksumAlg::Crc32 {
        if body.len() < 4 {
            return Err(Error::corruption("event too short for its checksum").at_offset(offset));
        }
        body = body.get(..body.len() - 4).unwrap_or_default();
        true
    } else {
        false
    };
    if verify {
        let (data, crc) = event.split_at(size - 4);
        let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let mut h = crc32fast::Hasher::new();
        if is_fde && header.flags & BINLOG_IN_USE != 0 {
            // The FDE's checksum is computed with the in-use flag cleared.
            let mut head = *hdr;
            let flags = header.flags & !BINLOG_IN_USE;
            head[17..19].copy_from_slice(&flags.to_le_bytes());
            h.update(&head);
            h.update(data.get(HEADER_LEN..).unwrap_or_default());
        } else {
            h.update(data);
        }
        let got = h.finalize();
        if got != want {
            return Err(Error::corruption(format!(
                "CRC32 mismatch in event of type {} ({} bytes): stored {want:#010x}, computed {got:#010x}",
                header.type_code, header.event_size
            ))
            .at_offset(offset));
        }
    }
    Ok(Framed::Event(RawEvent {
        offset,
        header,
        body,
        fde_alg,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(type_code: u8, body: &[u8], crc: bool) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + if crc { 4 } else { 0 }) as u32;
        let mut e = Vec::new();
        e.extend_from_slice(&1u32.to_le_bytes());
        e.push(type_code);
        e.extend_from_slice(&7u32.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        if crc {
            let c = crc32fast::hash(&e);
            e.extend_from_slice(&c.to_le_bytes());
        }
        e
    }

    #[test]
    fn frames_and_verifies() {
        let e = event(2, b"hello", true);
        match frame_at(&e, 0, ChecksumAlg::Crc32, 1 << 20).unwrap() {
            Framed::Event(ev) => assert_eq!(ev.body, b"hello"),
            other => panic!("unexpected {other:?}"),
        }
        let mut bad = e.clone();
        bad[20] ^= 1;
        let err = frame_at(&bad, 0, ChecksumAlg::Crc32, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption);
    }

    #[test]
    fn short_input_is_incomplete() {
        let e = event(2, b"hello", false);
        for cut in 1..e.len() {
            match frame_at(&e[..cut], 0, ChecksumAlg::None, 1 << 20).unwrap() {
                Framed::Incomplete { offset: 0, .. } => {}
                other => panic!("cut {cut}: unexpected {other:?}"),
            }
        }
        assert!(matches!(
            frame_at(&e, e.len() as u64, ChecksumAlg::None, 1 << 20).unwrap(),
            Framed::End
        ));
    }

    #[test]
    fn size_cap_and_bad_sizes() {
        let e = event(2, &[0u8; 100], false);
        let err = frame_at(&e, 0, ChecksumAlg::None, 50).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        let mut tiny = e.clone();
        tiny[9..13].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            frame_at(&tiny, 0, ChecksumAlg::None, 1 << 20)
                .unwrap_err()
                .kind(),
            ErrorKind::Corruption
        );
    }
}
