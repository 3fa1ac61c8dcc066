//! Request decoding: a frame's bytes into typed requests.
//!
//! Every length and count read from the wire is checked against the bytes that are really
//! there before anything is allocated from it: an array of `n` elements needs at least `n`
//! times its smallest element's size. (`kafka-protocol` 0.18 decodes arrays with
//! `Vec::with_capacity(count)` straight from the wire, so an 8-byte request could ask for
//! gigabytes; its generated types are used for responses only, see `response.rs`.)
//!
//! Only the request versions the endpoint advertises are decoded (`api.rs`); anything else is a
//! [`WireError`] and closes the connection.

use std::fmt;

/// Why a request could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// What was being read.
    pub what: &'static str,
    /// Byte offset in the frame.
    pub offset: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed request: {} at byte {}",
            self.what, self.offset
        )
    }
}

impl std::error::Error for WireError {}

type Result<T> = std::result::Result<T, WireError>;

/// A bounds-checked big-endian reader over one frame.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn err(&self, what: &'static str) -> WireError {
        WireError {
            what,
            offset: self.pos,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(what));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8> {
        Ok(i8::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.fixed(what)?))
    }

    /// A nullable string (i16 length, -1 = null) as raw bytes.
    pub(crate) fn nullable_str_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>> {
        let n = self.i16(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| self.err(what))?;
        self.take(n, what).map(Some)
    }

    /// A nullable UTF-8 string.
    pub(crate) fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>> {
        let at = self.pos;
        match self.nullable_str_bytes(what)? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| WireError { what, offset: at }),
        }
    }

    /// A non-null UTF-8 string.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String> {
        let at = self.pos;
        self.nullable_string(what)?
            .ok_or(WireError { what, offset: at })
    }

    /// Bytes with an i32 length (-1 = null, read as empty).
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(&[]);
        }
        let n = usize::try_from(n).map_err(|_| self.err(what))?;
        self.take(n, what)
    }

    /// An array with an i32 count (-1 = null). `min_size` is the smallest encoded size of one
    /// element: the count must fit in the bytes left before anything is allocated.
    pub(crate) fn array<T>(
        &mut self,
        what: &'static str,
        min_size: usize,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| self.err(what))?;
        if n.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(self.err(what));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(Some(v))
    }

    /// A non-null array.
    pub(crate) fn vec<T>(
        &mut self,
        what: &'static str,
        min_size: usize,
        f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let at = self.pos;
        self.array(what, min_size, f)?
            .ok_or(WireError { what, offset: at })
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.fixed::<1>(what)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(what))
    }

    /// Skips a KIP-482 tagged-field section (flexible headers and bodies).
    fn skip_tagged_fields(&mut self) -> Result<()> {
        let n = self.uvarint("tagged field count")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let len = self.uvarint("tagged field size")?;
            let len = usize::try_from(len).map_err(|_| self.err("tagged field size"))?;
            self.take(len, "tagged field")?;
        }
        Ok(())
    }
}

/// Kafka API keys the endpoint knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ApiKey {
    /// Produce (advertised because librdkafka sends no Fetch otherwise; refused).
    Produce = 0,
    /// Fetch.
    Fetch = 1,
    /// ListOffsets.
    ListOffsets = 2,
    /// Metadata.
    Metadata = 3,
    /// OffsetCommit.
    OffsetCommit = 8,
    /// OffsetFetch.
    OffsetFetch = 9,
    /// FindCoordinator.
    FindCoordinator = 10,
    /// JoinGroup.
    JoinGroup = 11,
    /// Heartbeat.
    Heartbeat = 12,
    /// LeaveGroup.
    LeaveGroup = 13,
    /// SyncGroup.
    SyncGroup = 14,
    /// SaslHandshake.
    SaslHandshake = 17,
    /// ApiVersions.
    ApiVersions = 18,
    /// SaslAuthenticate.
    SaslAuthenticate = 36,
}

impl ApiKey {
    /// The key for a wire value.
    #[must_use]
    pub fn from_i16(k: i16) -> Option<Self> {
        Some(match k {
            0 => Self::Produce,
            1 => Self::Fetch,
            2 => Self::ListOffsets,
            3 => Self::Metadata,
            8 => Self::OffsetCommit,
            9 => Self::OffsetFetch,
            10 => Self::FindCoordinator,
            11 => Self::JoinGroup,
            12 => Self::Heartbeat,
            13 => Self::LeaveGroup,
            14 => Self::SyncGroup,
            17 => Self::SaslHandshake,
            18 => Self::ApiVersions,
            36 => Self::SaslAuthenticate,
            _ => return None,
        })
    }

    /// The versions advertised in ApiVersions (KAFKA-WIRE-NOTES §0, plus ApiVersions v3).
    #[must_use]
    pub fn versions(self) -> (i16, i16) {
        match self {
            Self::Produce => (3, 3),
            Self::Fetch => (4, 5),
            Self::ListOffsets => (1, 2),
            Self::Metadata => (0, 4),
            // v1: sarama with V0_11_0_0 (it never negotiates).
            Self::OffsetCommit => (1, 3),
            Self::OffsetFetch => (1, 3),
            Self::FindCoordinator => (0, 1),
            Self::JoinGroup => (0, 2),
            Self::Heartbeat | Self::LeaveGroup | Self::SyncGroup => (0, 1),
            Self::SaslHandshake => (0, 1),
            Self::ApiVersions => (0, 3),
            Self::SaslAuthenticate => (0, 0),
        }
    }

    /// Every key, in the order ApiVersions lists them.
    pub const ALL: [ApiKey; 14] = [
        Self::Produce,
        Self::Fetch,
        Self::ListOffsets,
        Self::Metadata,
        Self::OffsetCommit,
        Self::OffsetFetch,
        Self::FindCoordinator,
        Self::JoinGroup,
        Self::Heartbeat,
        Self::LeaveGroup,
        Self::SyncGroup,
        Self::SaslHandshake,
        Self::ApiVersions,
        Self::SaslAuthenticate,
    ];
}

/// A request header (v1; v2 adds tagged fields, read only for ApiVersions v3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    /// The raw API key.
    pub api_key: i16,
    /// The request version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's id, when it sent one.
    pub client_id: Option<String>,
}

/// The first 8 bytes of a frame: enough to answer even a request whose header cannot be
/// parsed (an ApiVersions version above the advertised one).
fn peek_header(frame: &[u8]) -> Result<(i16, i16, i32)> {
    let mut r = Reader::new(frame);
    Ok((
        r.i16("api key")?,
        r.i16("api version")?,
        r.i32("correlation id")?,
    ))
}

/// One partition of a Fetch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Bytes wanted at most for this partition.
    pub partition_max_bytes: i32,
}

/// One partition of an OffsetCommit request: partition, offset, metadata.
pub type CommitPartition = (i32, i64, Option<Vec<u8>>);

/// A decoded request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// ApiVersions (the body is not needed).
    ApiVersions,
    /// SaslHandshake.
    SaslHandshake {
        /// The mechanism asked for.
        mechanism: String,
    },
    /// SaslAuthenticate.
    SaslAuthenticate {
        /// The SASL token.
        auth_bytes: Vec<u8>,
    },
    /// Metadata (`None`: all topics).
    Metadata {
        /// Topics asked for.
        topics: Option<Vec<String>>,
    },
    /// FindCoordinator.
    FindCoordinator {
        /// The group (or transactional id).
        key: String,
        /// 0 = group.
        key_type: i8,
    },
    /// ListOffsets.
    ListOffsets {
        /// Topics: name and (partition, timestamp) pairs.
        topics: Vec<(String, Vec<(i32, i64)>)>,
    },
    /// Fetch.
    Fetch {
        /// Longest wait for `min_bytes`.
        max_wait_ms: i32,
        /// Bytes wanted at least before answering.
        min_bytes: i32,
        /// Bytes wanted at most in the response.
        max_bytes: i32,
        /// Topics and their partitions.
        topics: Vec<(String, Vec<FetchPartition>)>,
    },
    /// OffsetCommit.
    OffsetCommit {
        /// The group.
        group_id: String,
        /// The member's generation (-1: a commit from outside any generation).
        generation_id: i32,
        /// The member ("" outside any generation).
        member_id: String,
        /// Topics: name and (partition, offset, metadata).
        topics: Vec<(String, Vec<CommitPartition>)>,
    },
    /// OffsetFetch (`topics` `None`: all).
    OffsetFetch {
        /// The group.
        group_id: String,
        /// Topics and partitions asked for.
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    /// JoinGroup.
    JoinGroup {
        /// The group.
        group_id: String,
        /// The member's session timeout.
        session_timeout_ms: i32,
        /// How long a rebalance waits for the member (v0: the session timeout).
        rebalance_timeout_ms: i32,
        /// "" for a new member.
        member_id: String,
        /// "consumer" for consumers.
        protocol_type: String,
        /// Assignors and their metadata, in preference order.
        protocols: Vec<(String, Vec<u8>)>,
    },
    /// SyncGroup.
    SyncGroup {
        /// The group.
        group_id: String,
        /// The generation.
        generation_id: i32,
        /// The member.
        member_id: String,
        /// The leader's assignments (member, assignment).
        assignments: Vec<(String, Vec<u8>)>,
    },
    /// Heartbeat.
    Heartbeat {
        /// The group.
        group_id: String,
        /// The generation.
        generation_id: i32,
        /// The member.
        member_id: String,
    },
    /// LeaveGroup.
    LeaveGroup {
        /// The group.
        group_id: String,
        /// The member.
        member_id: String,
    },
    /// Produce (refused: the connection is closed).
    Produce,
}

/// Decodes a request frame (header and body). The version must be one that is advertised.
///
/// # Errors
/// [`WireError`] for an unknown key, a version that is not advertised, or malformed bytes.
pub fn decode_request(frame: &[u8]) -> Result<(RequestHeader, Request)> {
    let mut r = Reader::new(frame);
    let api_key = r.i16("api key")?;
    let v = r.i16("api version")?;
    let correlation_id = r.i32("correlation id")?;
    let client_id = r.nullable_string("client id")?;
    let header = RequestHeader {
        api_key,
        api_version: v,
        correlation_id,
        client_id,
    };
    let key = ApiKey::from_i16(api_key).ok_or(WireError {
        what: "unknown api key",
        offset: 0,
    })?;
    let (lo, hi) = key.versions();
    if v < lo || v > hi {
        return Err(WireError {
            what: "api version not advertised",
            offset: 2,
        });
    }
    let req = match key {
        ApiKey::ApiVersions => {
            if v >= 3 {
                r.skip_tagged_fields()?;
            }
            Request::ApiVersions
        }
        ApiKey::SaslHandshake => Request::SaslHandshake {
            mechanism: r.string("mechanism")?,
        },
        ApiKey::SaslAuthenticate => Request::SaslAuthenticate {
            auth_bytes: r.bytes("auth bytes")?.to_vec(),
        },
        ApiKey::Metadata => {
            let topics = r.array("topics", 2, |r| r.string("topic"))?;
            if v >= 4 {
                r.i8("allow auto topic creation")?;
            }
            // v0 has no null: an empty list means all topics.
            let topics = match topics {
                Some(t) if v == 0 && t.is_empty() => None,
                t => t,
            };
            Request::Metadata { topics }
        }
        ApiKey::FindCoordinator => {
            let key = r.string("coordinator key")?;
            let key_type = if v >= 1 { r.i8("key type")? } else { 0 };
            Request::FindCoordinator { key, key_type }
        }
        ApiKey::ListOffsets => {
            r.i32("replica id")?;
            if v >= 2 {
                r.i8("isolation level")?;
            }
            let topics = r.vec("topics", 6, |r| {
                let name = r.string("topic")?;
                let parts = r.vec("partitions", 12, |r| {
                    Ok((r.i32("partition")?, r.i64("timestamp")?))
                })?;
                Ok((name, parts))
            })?;
            Request::ListOffsets { topics }
        }
        ApiKey::Fetch => {
            r.i32("replica id")?;
            let max_wait_ms = r.i32("max wait")?;
            let min_bytes = r.i32("min bytes")?;
            let max_bytes = r.i32("max bytes")?;
            r.i8("isolation level")?;
            let psize = if v >= 5 { 24 } else { 16 };
            let topics = r.vec("topics", 6, |r| {
                let name = r.string("topic")?;
                let parts = r.vec("partitions", psize, |r| {
                    let partition = r.i32("partition")?;
                    let fetch_offset = r.i64("fetch offset")?;
                    if v >= 5 {
                        r.i64("log start offset")?;
                    }
                    let partition_max_bytes = r.i32("partition max bytes")?;
                    Ok(FetchPartition {
                        partition,
                        fetch_offset,
                        partition_max_bytes,
                    })
                })?;
                Ok((name, parts))
            })?;
            Request::Fetch {
                max_wait_ms,
                min_bytes,
                max_bytes,
                topics,
            }
        }
        ApiKey::OffsetCommit => {
            let group_id = r.string("group id")?;
            let generation_id = r.i32("generation id")?;
            let member_id = r.string("member id")?;
            if v >= 2 {
                r.i64("retention time")?;
            }
            let psize = if v == 1 { 22 } else { 14 };
            let topics = r.vec("topics", 6, |r| {
                let name = r.string("topic")?;
                let parts = r.vec("partitions", psize, |r| {
                    let p = r.i32("partition")?;
                    let o = r.i64("offset")?;
                    if v == 1 {
                        r.i64("commit timestamp")?;
                    }
                    let m = r.nullable_str_bytes("metadata")?.map(<[u8]>::to_vec);
                    Ok((p, o, m))
                })?;
                Ok((name, parts))
            })?;
            Request::OffsetCommit {
                group_id,
                generation_id,
                member_id,
                topics,
            }
        }
        ApiKey::OffsetFetch => {
            let group_id = r.string("group id")?;
            let at = r.pos;
            let topics = r.array("topics", 6, |r| {
                let name = r.string("topic")?;
                let parts = r.vec("partitions", 4, |r| r.i32("partition"))?;
                Ok((name, parts))
            })?;
            if topics.is_none() && v < 2 {
                return Err(WireError {
                    what: "topics",
                    offset: at,
                });
            }
            Request::OffsetFetch { group_id, topics }
        }
        ApiKey::JoinGroup => {
            let group_id = r.string("group id")?;
            let session_timeout_ms = r.i32("session timeout")?;
            let rebalance_timeout_ms = if v >= 1 {
                r.i32("rebalance timeout")?
            } else {
                session_timeout_ms
            };
            let member_id = r.string("member id")?;
            let protocol_type = r.string("protocol type")?;
            let protocols = r.vec("protocols", 6, |r| {
                Ok((
                    r.string("protocol")?,
                    r.bytes("protocol metadata")?.to_vec(),
                ))
            })?;
            Request::JoinGroup {
                group_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                member_id,
                protocol_type,
                protocols,
            }
        }
        ApiKey::SyncGroup => {
            let group_id = r.string("group id")?;
            let generation_id = r.i32("generation id")?;
            let member_id = r.string("member id")?;
            let assignments = r.vec("assignments", 6, |r| {
                Ok((r.string("member id")?, r.bytes("assignment")?.to_vec()))
            })?;
            Request::SyncGroup {
                group_id,
                generation_id,
                member_id,
                assignments,
            }
        }
        ApiKey::Heartbeat => Request::Heartbeat {
            group_id: r.string("group id")?,
            generation_id: r.i32("generation id")?,
            member_id: r.string("member id")?,
        },
        ApiKey::LeaveGroup => Request::LeaveGroup {
            group_id: r.string("group id")?,
            member_id: r.string("member id")?,
        },
        ApiKey::Produce => Request::Produce,
    };
    Ok((header, req))
}

/// Where a connection is in its authentication, for [`decode_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before SASL: only ApiVersions, SaslHandshake and SaslAuthenticate are decoded.
    Unauthenticated,
    /// After a v0 SaslHandshake: the next frame is the raw PLAIN token, without a header.
    LegacyToken,
    /// After SASL: every advertised request.
    Authenticated,
}

/// What a frame holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The raw SASL token of the legacy flow.
    Token(&'a [u8]),
    /// ApiVersions at a version above the advertised one: answered with the v0 error body.
    ApiVersionsTooNew {
        /// To echo.
        correlation_id: i32,
    },
    /// A decoded request.
    Request(RequestHeader, Request),
}

/// Decodes one frame in `phase`. Before authentication a request other than ApiVersions,
/// SaslHandshake or SaslAuthenticate is refused from its first 8 bytes, before its body is
/// read.
///
/// # Errors
/// [`WireError`] for a malformed or refused frame (the connection is closed).
pub fn decode_frame(frame: &[u8], phase: Phase) -> Result<Incoming<'_>> {
    if phase == Phase::LegacyToken {
        return Ok(Incoming::Token(frame));
    }
    let (key, version, correlation_id) = peek_header(frame)?;
    if key == ApiKey::ApiVersions as i16 && version > ApiKey::ApiVersions.versions().1 {
        return Ok(Incoming::ApiVersionsTooNew { correlation_id });
    }
    let pre_auth = [
        ApiKey::ApiVersions as i16,
        ApiKey::SaslHandshake as i16,
        ApiKey::SaslAuthenticate as i16,
    ];
    if phase == Phase::Unauthenticated && !pre_auth.contains(&key) {
        return Err(WireError {
            what: "a request before authentication",
            offset: 0,
        });
    }
    let (h, r) = decode_request(frame)?;
    Ok(Incoming::Request(h, r))
}

/// The partitions of one topic in a consumer-protocol assignment (the bytes a group leader
/// sends in SyncGroup for each member), or `None` when they are not in that format.
#[must_use]
pub fn assigned_partitions(assignment: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut r = Reader::new(assignment);
    r.i16("version").ok()?;
    let topics = r
        .vec("topics", 6, |r| {
            Ok((r.string("topic")?, r.vec("partitions", 4, |r| r.i32("p"))?))
        })
        .ok()?;
    Some(
        topics
            .into_iter()
            .filter(|(t, _)| t == topic)
            .flat_map(|(_, p)| p)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: i16, v: i16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&key.to_be_bytes());
        b.extend_from_slice(&v.to_be_bytes());
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&3i16.to_be_bytes());
        b.extend_from_slice(b"cli");
        b
    }

    #[test]
    fn a_huge_array_count_is_refused_before_allocating() {
        // Metadata v1 announcing 2^31-1 topics in a 14-byte frame.
        let mut b = header(3, 1);
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        let e = decode_request(&b).unwrap_err();
        assert_eq!(e.what, "topics");
        // Fetch with a huge partition count inside one topic.
        let mut b = header(1, 5);
        for v in [-1i32, 500, 1, 1 << 20] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.push(0);
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        assert_eq!(decode_request(&b).unwrap_err().what, "partitions");
    }

    #[test]
    fn truncated_and_unknown_requests_are_errors() {
        let b = header(3, 1);
        for n in 0..b.len() {
            assert!(decode_request(&b[..n]).is_err());
        }
        assert_eq!(
            decode_request(&header(99, 0)).unwrap_err().what,
            "unknown api key"
        );
        assert_eq!(
            decode_request(&header(1, 11)).unwrap_err().what,
            "api version not advertised"
        );
        let mut neg = header(17, 1);
        neg.extend_from_slice(&(-5i16).to_be_bytes());
        assert!(decode_request(&neg).is_err());
    }

    #[test]
    fn random_frames_never_panic_in_any_phase() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let n = (rnd() % 80) as usize;
            let mut f: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
            if f.len() >= 4 && rnd() % 2 == 0 {
                // A known key and an advertised version, so bodies get decoded.
                let k = ApiKey::ALL[(rnd() % 14) as usize];
                let (lo, hi) = k.versions();
                let v = lo + (rnd() % u64::from((hi - lo + 1) as u16)) as i16;
                f[..2].copy_from_slice(&(k as i16).to_be_bytes());
                f[2..4].copy_from_slice(&v.to_be_bytes());
            }
            for phase in [
                Phase::Unauthenticated,
                Phase::LegacyToken,
                Phase::Authenticated,
            ] {
                let _ = decode_frame(&f, phase);
            }
            let _ = assigned_partitions(&f, "t");
            let _ = crate::sasl::parse_plain(&f);
        }
    }

    #[test]
    fn before_authentication_only_sasl_is_decoded() {
        let mut b = header(3, 1);
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            decode_frame(&b, Phase::Unauthenticated).unwrap_err().what,
            "a request before authentication"
        );
        assert_eq!(
            decode_frame(&b, Phase::Authenticated).unwrap_err().what,
            "topics"
        );
        assert!(matches!(
            decode_frame(&header(18, 7), Phase::Unauthenticated),
            Ok(Incoming::ApiVersionsTooNew { correlation_id: 7 })
        ));
        assert_eq!(
            decode_frame(b"\0u-g\0p", Phase::LegacyToken).unwrap(),
            Incoming::Token(b"\0u-g\0p")
        );
    }

    #[test]
    fn offset_commit_v1_has_a_timestamp_and_no_retention() {
        // sarama 1.40 with V0_11_0_0: group, generation, member, [topic, [partition, offset,
        // timestamp, metadata]].
        let mut b = header(8, 1);
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(b"g");
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&42i64.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend_from_slice(b"md");
        let (_, r) = decode_request(&b).unwrap();
        assert_eq!(
            r,
            Request::OffsetCommit {
                group_id: "g".into(),
                generation_id: -1,
                member_id: String::new(),
                topics: vec![("t".into(), vec![(0, 42, Some(b"md".to_vec()))])],
            }
        );
    }

    #[test]
    fn metadata_v0_empty_list_means_all_topics() {
        let mut b = header(3, 0);
        b.extend_from_slice(&0i32.to_be_bytes());
        let (_, r) = decode_request(&b).unwrap();
        assert_eq!(r, Request::Metadata { topics: None });
        let mut b = header(3, 1);
        b.extend_from_slice(&0i32.to_be_bytes());
        let (_, r) = decode_request(&b).unwrap();
        assert_eq!(
            r,
            Request::Metadata {
                topics: Some(vec![])
            }
        );
    }
}
