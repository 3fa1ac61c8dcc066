//! One client connection: framing, the authentication state, and the request handlers.
//!
//! A connection is `Unauthenticated` until SASL/PLAIN succeeds; before that only ApiVersions,
//! SaslHandshake and SaslAuthenticate (or, after a v0 handshake, the raw token frame) are
//! answered, frames are limited to `max_unauthenticated_request_bytes`, and anything else
//! closes the connection. Requests are handled one at a time, so responses go back in request
//! order. A malformed request closes only its own connection, with a log line naming the peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use changetrack::{ErrorKind, Login, ReadFrom, Store};
use kafka_protocol::messages::{
    api_versions_response::ApiVersion, list_offsets_response, metadata_response,
    offset_commit_response, offset_fetch_response, ApiVersionsResponse, BrokerId,
    FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    ListOffsetsResponse, MetadataResponse, OffsetCommitResponse, OffsetFetchResponse,
    SaslAuthenticateResponse, SaslHandshakeResponse, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::fetch::{Piece, Reader};
use crate::group::{code, ConnId, Group, Identity, JoinRequest, LeaseContext};
use crate::mapping::{offset_of, seq_at, timestamp_secs};
use crate::sasl::parse_plain;
use crate::server::Shared;
use crate::wire::{decode_frame, ApiKey, FetchPartition, Incoming, Phase, Request, RequestHeader};

/// Bytes of one frame must arrive within this once its length was read.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses must be taken by the client within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

const AUTH_FAILED: &str = "Authentication failed: invalid username or password";

/// Why a connection ends.
enum Close {
    /// The peer closed it (or the server stops).
    Eof,
    /// A protocol violation, a refused request or an I/O error: logged.
    Error(String),
    /// Refused credentials (answered, then closed).
    AuthFailed,
}

impl From<std::io::Error> for Close {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => {
                Self::Eof
            }
            K::WouldBlock | K::TimedOut => Self::Error("timed out".into()),
            _ => Self::Error(e.to_string()),
        }
    }
}

struct Session {
    login: Login,
    group: Arc<Group>,
    identity: Identity,
}

enum Auth {
    Fresh,
    /// A v0 handshake: the next frame is the raw PLAIN token.
    LegacyToken,
    /// A v1 handshake: the next request is SaslAuthenticate.
    Framed,
    Done(Session),
}

/// The largest batch-log buffer a connection keeps between answers.
const LOG_BUF_KEPT: usize = 4 << 20;

pub(crate) struct Conn<'s> {
    shared: &'s Shared,
    store: &'s Store,
    id: ConnId,
    peer: SocketAddr,
    stream: TcpStream,
    client_id: String,
    auth: Auth,
    connected: Instant,
    reader: Reader<'s>,
    wake: Option<crossbeam_channel::Receiver<()>>,
    frame: Vec<u8>,
    out: BytesMut,
    /// Batches of the batch log are read into it before they are sent (kept between answers,
    /// so that reading them allocates nothing).
    log_buf: Vec<u8>,
}

/// How often a long-polling Fetch looks whether its client closed the connection, and whether
/// the group's lease became free for it.
const PEER_CHECK: Duration = Duration::from_millis(20);

/// Serves one connection until it ends.
pub(crate) fn serve(shared: &Shared, id: ConnId, stream: TcpStream, peer: SocketAddr) {
    let store = shared.store.clone();
    let mut c = Conn {
        shared,
        store: &store,
        id,
        peer,
        stream,
        client_id: String::new(),
        auth: Auth::Fresh,
        connected: Instant::now(),
        reader: Reader::new(&store),
        wake: None,
        frame: Vec::new(),
        out: BytesMut::with_capacity(4096),
        log_buf: Vec::new(),
    };
    let _ = c.stream.set_nodelay(true);
    let _ = c.stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let end = c.run();
    match end {
        Close::Eof => tracing::debug!(peer = %peer, conn = id, "connection closed"),
        Close::AuthFailed => {
            tracing::info!(peer = %peer, conn = id, "authentication failed; connection closed");
            // Close our side first and let the client read the error before the connection
            // goes (kafka-python 3 drops data that arrives together with a reset): wait up to
            // a second for its close.
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            let _ = c.stream.set_read_timeout(Some(Duration::from_millis(200)));
            let until = Instant::now() + Duration::from_secs(1);
            let mut sink = [0u8; 512];
            while Instant::now() < until && matches!(c.stream.read(&mut sink), Ok(n) if n > 0) {}
        }
        Close::Error(e) => {
            shared.metrics.errors.inc();
            tracing::warn!(peer = %peer, conn = id, client = %c.client_id, "closing the connection: {e}");
        }
    }
    if let Auth::Done(s) = &c.auth {
        s.group.connection_closed(id, &s.identity);
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
}

impl<'s> Conn<'s> {
    fn authenticated(&self) -> bool {
        matches!(self.auth, Auth::Done(_))
    }

    fn run(&mut self) -> Close {
        loop {
            if self.shared.stopping() {
                return Close::Eof;
            }
            match self.read_frame() {
                Ok(true) => {}
                Ok(false) => return Close::Eof,
                Err(e) => return e,
            }
            if let Err(e) = self.handle_frame() {
                return e;
            }
        }
    }

    /// Reads one length-prefixed frame into `self.frame`; `false` at a clean end.
    fn read_frame(&mut self) -> Result<bool, Close> {
        let (max, wait) = if self.authenticated() {
            (
                self.shared.opts.max_request_bytes,
                self.shared.opts.idle_timeout,
            )
        } else {
            let left = self
                .shared
                .opts
                .auth_timeout
                .saturating_sub(self.connected.elapsed());
            if left.is_zero() {
                return Err(Close::Error("no authentication in time".into()));
            }
            (self.shared.opts.max_unauthenticated_request_bytes, left)
        };
        self.stream.set_read_timeout(Some(wait))?;
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.stream.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(Close::Eof),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Close::Error(if self.authenticated() {
                        "idle for too long".into()
                    } else {
                        "no authentication in time".into()
                    }));
                }
                Err(e) => return Err(e.into()),
            }
            if got < 4 {
                self.stream.set_read_timeout(Some(FRAME_TIMEOUT))?;
            }
        }
        let n = i32::from_be_bytes(len);
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| Close::Error(format!("a frame of {n} bytes (at most {max})")))?;
        self.stream.set_read_timeout(Some(FRAME_TIMEOUT))?;
        self.frame.clear();
        // Grows with the bytes that really arrive, not with the announced length.
        (&mut self.stream)
            .take(n as u64)
            .read_to_end(&mut self.frame)?;
        if self.frame.len() != n {
            return Err(Close::Eof);
        }
        self.shared.metrics.requests.inc();
        Ok(true)
    }

    fn send(&mut self) -> Result<(), Close> {
        let n = i32::try_from(self.out.len() - 4)
            .map_err(|_| Close::Error("response too large".into()))?;
        self.out[..4].copy_from_slice(&n.to_be_bytes());
        self.stream.write_all(&self.out)?;
        Ok(())
    }

    /// Encodes `body` as the response to `correlation_id` (header v0: every response this
    /// endpoint sends is below the flexible versions, and ApiVersions always uses v0).
    fn respond<R: Encodable>(
        &mut self,
        correlation_id: i32,
        version: i16,
        body: &R,
    ) -> Result<(), Close> {
        self.out.clear();
        self.out.put_i32(0);
        self.out.put_i32(correlation_id);
        body.encode(&mut self.out, version)
            .map_err(|e| Close::Error(format!("cannot encode a response: {e}")))?;
        self.send()
    }

    fn handle_frame(&mut self) -> Result<(), Close> {
        let phase = match self.auth {
            Auth::LegacyToken => Phase::LegacyToken,
            Auth::Done(_) => Phase::Authenticated,
            Auth::Fresh | Auth::Framed => Phase::Unauthenticated,
        };
        let frame = std::mem::take(&mut self.frame);
        let result = match decode_frame(&frame, phase) {
            Err(e) => Err(Close::Error(e.to_string())),
            Ok(Incoming::Token(token)) => {
                // The raw token of a v0 handshake; success is a zero-length frame.
                if self.authenticate(token) {
                    self.stream.write_all(&[0, 0, 0, 0]).map_err(Close::from)
                } else {
                    Err(Close::AuthFailed)
                }
            }
            Ok(Incoming::ApiVersionsTooNew { correlation_id }) => {
                self.api_versions(correlation_id, i16::MAX)
            }
            Ok(Incoming::Request(header, req)) => self.handle(header, req),
        };
        self.frame = frame;
        result
    }

    fn handle(&mut self, header: RequestHeader, req: Request) -> Result<(), Close> {
        let (key, version, correlation_id) =
            (header.api_key, header.api_version, header.correlation_id);
        if self.client_id.is_empty() {
            if let Some(c) = &header.client_id {
                self.client_id = c.chars().take(256).collect();
            }
        }
        let authed = self.authenticated();
        match (req, authed) {
            (Request::ApiVersions, _) => self.api_versions(correlation_id, version),
            (Request::SaslHandshake { mechanism }, false) => {
                self.sasl_handshake(&header, &mechanism)
            }
            (Request::SaslAuthenticate { auth_bytes }, false) => {
                self.sasl_authenticate(&header, &auth_bytes)
            }
            (_, false) => Err(Close::Error(format!("api key {key} before authentication"))),
            (Request::SaslHandshake { .. } | Request::SaslAuthenticate { .. }, true) => {
                Err(Close::Error("a second authentication".into()))
            }
            (Request::Produce, true) => Err(Close::Error("Produce is not supported".into())),
            (Request::Metadata { topics }, true) => self.metadata(&header, topics),
            (Request::FindCoordinator { key, key_type }, true) => {
                self.find_coordinator(&header, &key, key_type)
            }
            (Request::ListOffsets { topics }, true) => self.list_offsets(&header, topics),
            (
                Request::Fetch {
                    max_wait_ms,
                    min_bytes,
                    max_bytes,
                    topics,
                },
                true,
            ) => self.fetch(&header, max_wait_ms, min_bytes, max_bytes, topics),
            (
                Request::OffsetCommit {
                    group_id,
                    generation_id,
                    member_id,
                    topics,
                },
                true,
            ) => self.offset_commit(&header, &group_id, generation_id, &member_id, topics),
            (Request::OffsetFetch { group_id, topics }, true) => {
                self.offset_fetch(&header, &group_id, topics)
            }
            (
                Request::JoinGroup {
                    group_id,
                    session_timeout_ms,
                    rebalance_timeout_ms,
                    member_id,
                    protocol_type,
                    protocols,
                },
                true,
            ) => self.join_group(
                &header,
                &group_id,
                JoinRequest {
                    member_id,
                    session_timeout: ms(session_timeout_ms),
                    rebalance_timeout: ms(rebalance_timeout_ms),
                    protocol_type,
                    protocols,
                },
            ),
            (
                Request::SyncGroup {
                    group_id,
                    generation_id,
                    member_id,
                    assignments,
                },
                true,
            ) => self.sync_group(&header, &group_id, generation_id, &member_id, assignments),
            (
                Request::Heartbeat {
                    group_id,
                    generation_id,
                    member_id,
                },
                true,
            ) => self.heartbeat(&header, &group_id, generation_id, &member_id),
            (
                Request::LeaveGroup {
                    group_id,
                    member_id,
                },
                true,
            ) => self.leave_group(&header, &group_id, &member_id),
        }
    }

    // ------------------------------------------------------------------ authentication

    fn api_versions(&mut self, correlation_id: i32, version: i16) -> Result<(), Close> {
        let keys = ApiKey::ALL
            .iter()
            .map(|k| {
                let (lo, hi) = k.versions();
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(lo)
                    .with_max_version(hi)
            })
            .collect();
        let max = ApiKey::ApiVersions.versions().1;
        if version > max {
            // KIP-511: an unsupported version gets a v0 body with UNSUPPORTED_VERSION and the
            // ranges, so the client retries with one it finds there.
            let r = ApiVersionsResponse::default()
                .with_error_code(code::UNSUPPORTED_VERSION)
                .with_api_keys(keys);
            return self.respond(correlation_id, 0, &r);
        }
        let r = ApiVersionsResponse::default().with_api_keys(keys);
        self.respond(correlation_id, version, &r)
    }

    fn sasl_handshake(&mut self, h: &RequestHeader, mechanism: &str) -> Result<(), Close> {
        let plain = mechanism == "PLAIN";
        let r = SaslHandshakeResponse::default()
            .with_error_code(if plain {
                code::NONE
            } else {
                code::UNSUPPORTED_SASL_MECHANISM
            })
            .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
        self.respond(h.correlation_id, h.api_version, &r)?;
        if !plain {
            return Err(Close::Error(format!(
                "SASL mechanism {mechanism:?} is not supported (only PLAIN)"
            )));
        }
        self.auth = if h.api_version == 0 {
            Auth::LegacyToken
        } else {
            Auth::Framed
        };
        Ok(())
    }

    fn sasl_authenticate(&mut self, h: &RequestHeader, token: &[u8]) -> Result<(), Close> {
        if !matches!(self.auth, Auth::Framed) {
            return Err(Close::Error(
                "SaslAuthenticate without a v1 handshake".into(),
            ));
        }
        let ok = self.authenticate(token);
        let r = if ok {
            SaslAuthenticateResponse::default()
        } else {
            SaslAuthenticateResponse::default()
                .with_error_code(code::SASL_AUTHENTICATION_FAILED)
                .with_error_message(Some(StrBytes::from_static_str(AUTH_FAILED)))
        };
        self.respond(h.correlation_id, h.api_version, &r)?;
        if ok {
            Ok(())
        } else {
            Err(Close::AuthFailed)
        }
    }

    /// Checks a PLAIN token against the store's groups (in the bounded pool of hashing
    /// threads).
    fn authenticate(&mut self, token: &[u8]) -> bool {
        let Some(t) = parse_plain(token) else {
            self.shared.metrics.auth_failures.inc();
            return false;
        };
        let deadline = self.connected + self.shared.opts.auth_timeout;
        let Some(login) = self.shared.auth.login(&t, deadline) else {
            tracing::warn!(peer = %self.peer, "too many password checks at once: gave up waiting");
            self.shared.metrics.auth_failures.inc();
            return false;
        };
        match login {
            Ok(login) => {
                let identity = Identity {
                    ip: self.peer.ip(),
                    client_id: self.client_id.clone(),
                };
                let group = self.shared.group(&login.group().id);
                group.connection_opened(&identity);
                tracing::debug!(peer = %self.peer, group = %login.group().id, "authenticated");
                self.auth = Auth::Done(Session {
                    login,
                    group,
                    identity,
                });
                true
            }
            Err(e) => {
                if e.kind() != ErrorKind::Unauthorized {
                    tracing::warn!(peer = %self.peer, "cannot check credentials: {e}");
                }
                self.shared.metrics.auth_failures.inc();
                false
            }
        }
    }

    fn session(&self) -> &Session {
        match &self.auth {
            Auth::Done(s) => s,
            // Handlers run only in this state (handle_frame).
            _ => unreachable!("request handled before authentication"),
        }
    }

    fn my_group(&self, group_id: &str) -> bool {
        self.session().login.group().id == group_id
    }

    fn lease_context(&self) -> LeaseContext<'_> {
        LeaseContext {
            store: self.store,
            login: &self.session().login,
            session_timeout: self.shared.opts.session_timeout,
        }
    }

    // ------------------------------------------------------------------ cluster

    fn metadata(&mut self, h: &RequestHeader, topics: Option<Vec<String>>) -> Result<(), Close> {
        let ours = &self.shared.opts.topic;
        let names = topics.unwrap_or_else(|| vec![ours.clone()]);
        let topics = names
            .into_iter()
            .map(|t| {
                let mine = t == *ours;
                let mut topic = metadata_response::MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t))));
                if mine {
                    topic.partitions =
                        vec![metadata_response::MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(0))
                            .with_replica_nodes(vec![BrokerId(0)])
                            .with_isr_nodes(vec![BrokerId(0)])];
                } else {
                    topic.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                }
                topic
            })
            .collect();
        let r = MetadataResponse::default()
            .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(0))
                .with_host(StrBytes::from_string(self.shared.host.clone()))
                .with_port(self.shared.port)])
            .with_cluster_id(if h.api_version >= 2 {
                Some(StrBytes::from_string(self.shared.cluster_id.clone()))
            } else {
                None
            })
            .with_controller_id(BrokerId(0))
            .with_topics(topics);
        self.respond(h.correlation_id, h.api_version, &r)
    }

    fn find_coordinator(
        &mut self,
        h: &RequestHeader,
        key: &str,
        key_type: i8,
    ) -> Result<(), Close> {
        let error = if key_type != 0 {
            code::COORDINATOR_NOT_AVAILABLE
        } else if !self.my_group(key) {
            code::GROUP_AUTHORIZATION_FAILED
        } else {
            code::NONE
        };
        let mut r = FindCoordinatorResponse::default().with_error_code(error);
        if error == code::NONE {
            r.node_id = BrokerId(0);
            r.host = StrBytes::from_string(self.shared.host.clone());
            r.port = self.shared.port;
        } else {
            r.node_id = BrokerId(-1);
            r.port = -1;
            if h.api_version >= 1 {
                r.error_message = Some(StrBytes::from_static_str(
                    "Group authorization failed: this connection authenticated for another group",
                ));
            }
        }
        self.respond(h.correlation_id, h.api_version, &r)
    }

    // ------------------------------------------------------------------ offsets

    /// `(oldest, last)`: the log start offset and the last stored seq.
    fn range(&self) -> Result<(u64, u64), Close> {
        let last = self.store.last_seq();
        let oldest = self
            .store
            .oldest_seq()
            .map_err(|e| Close::Error(format!("cannot read the store: {e}")))?
            .unwrap_or(last + 1);
        Ok((oldest, last))
    }

    fn list_offsets(
        &mut self,
        h: &RequestHeader,
        topics: Vec<(String, Vec<(i32, i64)>)>,
    ) -> Result<(), Close> {
        let (oldest, last) = self.range()?;
        let mut out = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let mine = name == self.shared.opts.topic;
            let partitions = parts
                .into_iter()
                .map(|(p, ts)| {
                    let r = list_offsets_response::ListOffsetsPartitionResponse::default()
                        .with_partition_index(p);
                    if !mine || p != 0 {
                        return r
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_timestamp(-1)
                            .with_offset(-1);
                    }
                    let (error, timestamp, offset) = self.offset_for(ts, oldest, last);
                    r.with_error_code(error)
                        .with_timestamp(timestamp)
                        .with_offset(offset)
                })
                .collect();
            out.push(
                list_offsets_response::ListOffsetsTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions),
            );
        }
        let r = ListOffsetsResponse::default().with_topics(out);
        self.respond(h.correlation_id, h.api_version, &r)
    }

    /// ListOffsets for one timestamp: `(error, timestamp, offset)`.
    ///
    /// - -1 (latest): the high watermark; -2 (earliest): the log start.
    /// - A time (seconds below 1e11, else milliseconds): the first record at or after it (by
    ///   the running maximum of record times, as Kafka's time index). A time after the newest
    ///   record gives the high watermark, with the asked time as its timestamp: reading starts
    ///   with the next record stored (Kafka would answer "no offset", which makes the DTS SDK
    ///   replay everything from the beginning). A time before the oldest record gives the
    ///   oldest record while the store still holds everything it ever stored (seq 1: nothing
    ///   before it was lost); once retention trimmed records it is `OFFSET_OUT_OF_RANGE`,
    ///   because records of that time are gone and a silent jump to the oldest one would skip
    ///   them.
    fn offset_for(&self, ts: i64, oldest: u64, last: u64) -> (i16, i64, i64) {
        let hw = offset_of(last + 1);
        match ts {
            -1 => (code::NONE, -1, hw),
            -2 => (code::NONE, -1, offset_of(oldest)),
            _ => {
                let Some(secs) = timestamp_secs(ts) else {
                    return (code::UNKNOWN_SERVER_ERROR, -1, -1);
                };
                match self.store.resolve(ReadFrom::Timestamp(secs)) {
                    Ok(seq) if seq <= last => {
                        let t = self
                            .store
                            .get(seq)
                            .map_or(i64::from(secs) * 1000, |r| crate::mapping::timestamp_ms(&r));
                        (code::NONE, t, offset_of(seq))
                    }
                    Ok(_) => (code::NONE, i64::from(secs) * 1000, hw),
                    Err(e) if e.kind() == ErrorKind::OutOfRange => {
                        let newest = if last == 0 {
                            None
                        } else {
                            self.store.get(last).ok().map(|r| r.timestamp)
                        };
                        match newest {
                            Some(n) if secs > n => (code::NONE, i64::from(secs) * 1000, hw),
                            None => (code::NONE, i64::from(secs) * 1000, hw),
                            Some(_) if oldest == 1 => {
                                let t = self
                                    .store
                                    .get(1)
                                    .map_or(-1, |r| crate::mapping::timestamp_ms(&r));
                                (code::NONE, t, 1)
                            }
                            Some(_) => {
                                tracing::info!(peer = %self.peer, "ListOffsets for time {ts}: {e}");
                                (code::OFFSET_OUT_OF_RANGE, -1, -1)
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, "ListOffsets for time {ts}: {e}");
                        (code::KAFKA_STORAGE_ERROR, -1, -1)
                    }
                }
            }
        }
    }

    fn offset_commit(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        generation: i32,
        member_id: &str,
        topics: Vec<(String, Vec<crate::wire::CommitPartition>)>,
    ) -> Result<(), Close> {
        let group_error = if !self.my_group(group_id) {
            Some(code::GROUP_AUTHORIZATION_FAILED)
        } else if generation < 0 && member_id.is_empty() {
            // A commit from outside any generation (assign mode): only while no member is in
            // the group, as in Kafka.
            self.session()
                .group
                .has_members()
                .then_some(code::UNKNOWN_MEMBER_ID)
        } else {
            self.session()
                .group
                .check_member(member_id, generation, true)
                .err()
        };
        let mut out = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let mine = name == self.shared.opts.topic;
            let partitions = parts
                .into_iter()
                .map(|(p, offset, metadata)| {
                    let error = if let Some(e) = group_error {
                        e
                    } else if !mine || p != 0 {
                        code::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        self.commit_one(offset, metadata.as_deref().unwrap_or_default())
                    };
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(error)
                })
                .collect();
            out.push(
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions),
            );
        }
        let r = OffsetCommitResponse::default().with_topics(out);
        // v0-v2 responses have one layout (the crate encodes from v2).
        self.respond(h.correlation_id, h.api_version.max(2), &r)
    }

    fn commit_one(&self, offset: i64, metadata: &[u8]) -> i16 {
        if metadata.len() > changetrack::MAX_COMMIT_METADATA {
            return code::OFFSET_METADATA_TOO_LARGE;
        }
        let Some(next) = seq_at(offset) else {
            return code::OFFSET_OUT_OF_RANGE;
        };
        let s = self.session();
        match s
            .group
            .commit(&s.identity, &self.lease_context(), next, metadata)
        {
            Ok(()) => {
                self.shared.metrics.commits.inc();
                code::NONE
            }
            Err(e) => e,
        }
    }

    fn offset_fetch(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<(), Close> {
        let ours = self.shared.opts.topic.clone();
        let topics = topics.unwrap_or_else(|| vec![(ours.clone(), vec![0])]);
        let mine = self.my_group(group_id);
        let committed = if mine {
            changetrack::Groups::open(self.store.path())
                .and_then(|g| g.committed_with_metadata(group_id))
                .map_err(|e| {
                    tracing::warn!(peer = %self.peer, "cannot read the committed position: {e}");
                    e
                })
        } else {
            Ok(None)
        };
        let mut out = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let partitions = parts
                .into_iter()
                .map(|p| {
                    let r = offset_fetch_response::OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_metadata(Some(StrBytes::default()));
                    if !mine {
                        return r.with_error_code(code::GROUP_AUTHORIZATION_FAILED);
                    }
                    if name != ours || p != 0 {
                        return r.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                    }
                    match &committed {
                        Ok(Some((c, meta))) => r
                            .with_committed_offset(offset_of(c.seq + 1))
                            .with_metadata(Some(metadata_str(meta))),
                        Ok(None) => r,
                        Err(_) => r.with_error_code(code::KAFKA_STORAGE_ERROR),
                    }
                })
                .collect();
            out.push(
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions),
            );
        }
        let mut r = OffsetFetchResponse::default().with_topics(out);
        if h.api_version >= 2 && !mine {
            r.error_code = code::GROUP_AUTHORIZATION_FAILED;
        }
        self.respond(h.correlation_id, h.api_version, &r)
    }

    // ------------------------------------------------------------------ fetch

    fn fetch(
        &mut self,
        h: &RequestHeader,
        max_wait_ms: i32,
        min_bytes: i32,
        max_bytes: i32,
        topics: Vec<(String, Vec<FetchPartition>)>,
    ) -> Result<(), Close> {
        let shared = self.shared;
        let opts = &shared.opts;
        let wait = ms(max_wait_ms).min(opts.max_fetch_wait);
        let deadline = Instant::now() + wait;
        let total_limit = usize::try_from(max_bytes)
            .unwrap_or(0)
            .clamp(1, opts.max_fetch_bytes);
        let min_bytes = usize::try_from(min_bytes).unwrap_or(0).max(1);
        let ours = opts.topic.clone();
        let wants_ours = topics
            .iter()
            .any(|(t, p)| *t == ours && p.iter().any(|p| p.partition == 0));
        let may_fetch = |c: &Self| {
            let s = c.session();
            s.group.may_fetch(c.id, &s.identity, &c.lease_context())
        };
        let mut allowed = wants_ours && may_fetch(self);
        if self.wake.is_none() {
            self.wake = Some(self.store.subscribe());
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut bytes = 0usize;
        let mut served = 0u64;
        let mut error = code::NONE;
        let (mut oldest, mut last) = self.range()?;
        // Our partition's offset (the first request for partition 0 if it is listed twice).
        let offset = topics
            .iter()
            .filter(|(t, _)| *t == ours)
            .flat_map(|(_, p)| p.iter())
            .find(|p| p.partition == 0)
            .map(|p| (p.fetch_offset, p.partition_max_bytes));
        if let Some((fetch_offset, pmax)) = offset {
            let limit = usize::try_from(pmax).unwrap_or(0).clamp(1, total_limit);
            match seq_at(fetch_offset) {
                Some(o) if o >= oldest && o <= last + 1 => {
                    let mut next = o;
                    // When the wait next looks at the socket and the lease (on time, not on
                    // quiet: a live ingest wakes it at every commit).
                    let mut next_check = Instant::now() + PEER_CHECK;
                    loop {
                        if let Some(w) = &self.wake {
                            while w.try_recv().is_ok() {}
                        }
                        (oldest, last) = self.range()?;
                        if allowed && next <= last && next >= oldest {
                            match self.reader.read(
                                &shared.blocks,
                                (oldest, next, last),
                                limit.saturating_sub(bytes).max(1),
                                pieces.is_empty(),
                            ) {
                                Ok(f) => {
                                    served += f.records;
                                    next += f.records;
                                    bytes += f.bytes;
                                    pieces.extend(f.pieces);
                                }
                                Err(e) if e.kind() == ErrorKind::OutOfRange => {
                                    error = code::OFFSET_OUT_OF_RANGE;
                                    pieces.clear();
                                    break;
                                }
                                Err(e) => {
                                    tracing::error!(peer = %self.peer, "cannot read records from {next}: {e}");
                                    error = code::KAFKA_STORAGE_ERROR;
                                    pieces.clear();
                                    break;
                                }
                            }
                        }
                        if bytes >= min_bytes || bytes >= limit {
                            break;
                        }
                        let now = Instant::now();
                        if now >= deadline || shared.stopping() {
                            break;
                        }
                        self.reader.release();
                        let w = self.wake.clone();
                        let nap = (deadline - now).min(next_check.saturating_duration_since(now));
                        if let Some(w) = w {
                            crossbeam_channel::select! {
                                recv(w) -> _ => {}
                                recv(shared.stop_signal()) -> _ => {}
                                default(nap) => {}
                            }
                        }
                        if Instant::now() >= next_check {
                            next_check = Instant::now() + PEER_CHECK;
                            // A client that closed its connection during the long poll: answer
                            // now (the next read ends the connection and releases the group's
                            // lease), so that the same consumer, restarted at once, does not
                            // wait for this poll to end.
                            if self.peer_closed() {
                                break;
                            }
                            // Another connection may have released the lease meanwhile.
                            if wants_ours && !allowed {
                                allowed = may_fetch(self);
                            }
                        }
                    }
                    if allowed {
                        self.session().group.touch(self.id);
                    }
                }
                _ => error = code::OFFSET_OUT_OF_RANGE,
            }
        }
        if served > 0 {
            shared.metrics.fetch_records.add(served);
            shared.metrics.fetch_bytes.add(bytes as u64);
        }
        let hw = offset_of(last + 1);
        let log_start = offset_of(oldest.min(last + 1));
        self.send_fetch(h, &topics, &ours, (error, hw, log_start), &pieces)
    }

    /// Whether the client closed its side of the connection (end of stream, nothing unread):
    /// a non-blocking peek at the socket.
    fn peer_closed(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let r = self.stream.peek(&mut [0u8; 1]);
        let _ = self.stream.set_nonblocking(false);
        matches!(r, Ok(0))
    }

    /// Writes a Fetch response, the records straight from their blocks (one vectored write,
    /// no copy of the record bytes).
    fn send_fetch(
        &mut self,
        h: &RequestHeader,
        topics: &[(String, Vec<FetchPartition>)],
        ours: &str,
        state: (i16, i64, i64),
        pieces: &[Piece],
    ) -> Result<(), Close> {
        let records: usize = pieces.iter().map(Piece::len).sum();
        let (head, tail) = fetch_response(h, topics, ours, state, records)
            .ok_or_else(|| Close::Error("response too large".into()))?;
        // Batches of the batch log are read into the connection's buffer first, so that the
        // whole answer still goes in one vectored write.
        let logged: usize = pieces
            .iter()
            .filter(|p| p.in_memory().is_none())
            .map(Piece::len)
            .sum();
        if self.log_buf.len() < logged {
            self.log_buf.resize(logged, 0);
        }
        let mut at = 0;
        for p in pieces {
            if let Piece::Logged(r) = p {
                r.read_into(&mut self.log_buf[at..at + r.len()])
                    .map_err(|e| Close::Error(e.to_string()))?;
                at += r.len();
            }
        }
        let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(pieces.len() + 2);
        slices.push(std::io::IoSlice::new(&head));
        let mut at = 0;
        for p in pieces {
            if let Some(b) = p.in_memory() {
                slices.push(std::io::IoSlice::new(b));
            } else {
                slices.push(std::io::IoSlice::new(&self.log_buf[at..at + p.len()]));
                at += p.len();
            }
        }
        slices.push(std::io::IoSlice::new(&tail));
        write_all_vectored(&mut self.stream, &mut slices)?;
        // A connection keeps at most a few MiB between answers (a client may ask for answers
        // of up to `max_fetch_bytes`: those allocate their buffer each time).
        if self.log_buf.len() > LOG_BUF_KEPT {
            self.log_buf = Vec::new();
        }
        Ok(())
    }

    // ------------------------------------------------------------------ groups

    fn join_group(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        req: JoinRequest,
    ) -> Result<(), Close> {
        let a = if self.my_group(group_id) {
            let s = self.session();
            let shared = self.shared;
            s.group.join(
                &s.identity,
                req,
                self.shared.opts.member_session_timeout,
                &|| shared.stopping(),
            )
        } else {
            crate::group::JoinAnswer {
                error: code::GROUP_AUTHORIZATION_FAILED,
                generation: -1,
                member_id: req.member_id,
                ..Default::default()
            }
        };
        let members = a
            .members
            .into_iter()
            .map(|(id, meta)| {
                kafka_protocol::messages::join_group_response::JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(id))
                    .with_metadata(Bytes::from(meta))
            })
            .collect();
        let r = JoinGroupResponse::default()
            .with_error_code(a.error)
            .with_generation_id(a.generation)
            .with_protocol_name(Some(StrBytes::from_string(a.protocol)))
            .with_leader(StrBytes::from_string(a.leader))
            .with_member_id(StrBytes::from_string(a.member_id))
            .with_members(members);
        self.respond(h.correlation_id, h.api_version, &r)
    }

    fn sync_group(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Close> {
        let (error, assignment) = if self.my_group(group_id) {
            let shared = self.shared;
            self.session()
                .group
                .sync(member_id, generation, assignments, &|| shared.stopping())
        } else {
            (code::GROUP_AUTHORIZATION_FAILED, Vec::new())
        };
        let r = SyncGroupResponse::default()
            .with_error_code(error)
            .with_assignment(Bytes::from(assignment));
        self.respond(h.correlation_id, h.api_version, &r)
    }

    fn heartbeat(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        generation: i32,
        member_id: &str,
    ) -> Result<(), Close> {
        let error = if self.my_group(group_id) {
            self.session()
                .group
                .check_member(member_id, generation, false)
                .err()
                .unwrap_or(code::NONE)
        } else {
            code::GROUP_AUTHORIZATION_FAILED
        };
        let r = HeartbeatResponse::default().with_error_code(error);
        self.respond(h.correlation_id, h.api_version, &r)
    }

    fn leave_group(
        &mut self,
        h: &RequestHeader,
        group_id: &str,
        member_id: &str,
    ) -> Result<(), Close> {
        let error = if self.my_group(group_id) {
            self.session().group.leave(member_id)
        } else {
            code::GROUP_AUTHORIZATION_FAILED
        };
        let r = LeaveGroupResponse::default().with_error_code(error);
        self.respond(h.correlation_id, h.api_version, &r)
    }
}

/// A Fetch v4/v5 response framed, written by hand around its records (`records` bytes, sent
/// between the two parts): throttle_time_ms, [topic name, [partition, error, high watermark,
/// last stable offset, log start offset (v5), aborted transactions (empty), records]]. The
/// records go with the first partition 0 of our topic; what follows it is in the second part.
/// `None` when the response would exceed 2 GiB.
fn fetch_response(
    h: &RequestHeader,
    topics: &[(String, Vec<FetchPartition>)],
    ours: &str,
    (error, hw, log_start): (i16, i64, i64),
    records: usize,
) -> Option<(BytesMut, BytesMut)> {
    let records_len = i32::try_from(records).ok()?;
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut head = BytesMut::with_capacity(128);
    let mut tail = BytesMut::new();
    head.put_i32(0); // the frame length, below
    head.put_i32(h.correlation_id);
    head.put_i32(0); // throttle
    head.put_i32(count(topics.len()));
    let mut ours_done = false;
    for (name, parts) in topics {
        let buf = if ours_done { &mut tail } else { &mut head };
        buf.put_i16(i16::try_from(name.len()).unwrap_or(i16::MAX));
        buf.put_slice(name.as_bytes());
        buf.put_i32(count(parts.len()));
        for p in parts {
            let mine = name == ours && p.partition == 0;
            let with_records = mine && !ours_done;
            let buf = if ours_done { &mut tail } else { &mut head };
            let (e, w, l) = if mine {
                (error, hw, log_start)
            } else {
                (code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1)
            };
            buf.put_i32(p.partition);
            buf.put_i16(e);
            buf.put_i64(w);
            buf.put_i64(w);
            if h.api_version >= 5 {
                buf.put_i64(l);
            }
            buf.put_i32(0); // aborted transactions
            buf.put_i32(if with_records { records_len } else { 0 });
            ours_done |= with_records;
        }
    }
    let total = i32::try_from(head.len() - 4 + records + tail.len()).ok()?;
    head[..4].copy_from_slice(&total.to_be_bytes());
    Some((head, tail))
}

/// `Write::write_all_vectored` (not stable yet).
fn write_all_vectored(
    w: &mut impl Write,
    mut bufs: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()> {
    std::io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Commit metadata as a protocol string: verbatim when it is UTF-8 (what every client sends),
/// else with replacement characters (as a Kafka broker would read it).
fn metadata_str(meta: &[u8]) -> StrBytes {
    match std::str::from_utf8(meta) {
        Ok(s) => StrBytes::from_string(s.to_owned()),
        Err(_) => StrBytes::from_string(String::from_utf8_lossy(meta).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn the_hand_written_fetch_response_decodes_like_the_reference() {
        let records = b"0123456789abcdef";
        for v in [4i16, 5] {
            let h = RequestHeader {
                api_key: 1,
                api_version: v,
                correlation_id: 9,
                client_id: None,
            };
            let fp = |partition| FetchPartition {
                partition,
                fetch_offset: 1,
                partition_max_bytes: 1,
            };
            let topics = vec![
                ("other".to_owned(), vec![fp(0)]),
                ("cdc".to_owned(), vec![fp(3), fp(0), fp(0)]),
                ("more".to_owned(), vec![fp(1)]),
            ];
            let (head, tail) =
                fetch_response(&h, &topics, "cdc", (0, 77, 5), records.len()).unwrap();
            let mut all = head.to_vec();
            all.extend_from_slice(records);
            all.extend_from_slice(&tail);
            let n = i32::from_be_bytes(all[..4].try_into().unwrap()) as usize;
            assert_eq!(n, all.len() - 4);
            assert_eq!(&all[4..8], &9i32.to_be_bytes());
            let mut body = bytes::Bytes::copy_from_slice(&all[8..]);
            let r = FetchResponse::decode(&mut body, v).unwrap();
            assert!(body.is_empty());
            assert_eq!(r.responses.len(), 3);
            let cdc = &r.responses[1].partitions;
            assert_eq!(cdc[0].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
            assert_eq!(cdc[1].high_watermark, 77);
            assert_eq!(cdc[1].last_stable_offset, 77);
            if v == 5 {
                assert_eq!(cdc[1].log_start_offset, 5);
            }
            assert_eq!(cdc[1].records.as_deref(), Some(&records[..]));
            assert_eq!(cdc[2].records.as_deref(), Some(&b""[..]));
            assert_eq!(r.responses[0].partitions[0].error_code, 3);
            assert_eq!(r.responses[2].partitions[0].error_code, 3);
        }
    }
}
